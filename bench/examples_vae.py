"""The pytorch/examples VAE (``vae/main.py``), written once for PyTorch and for minae.

The model and loss are the ones a student copies from pytorch/examples: 784 → 400 (ReLU)
→ μ, log v (20 each, fc21 and fc22); 20 → 400 (ReLU) → 784 (sigmoid); the probability BCE
summed over pixels and samples, plus the KL written out term by term; Adam, lr 1e-3.
Nothing here is minae-specific: ``build`` receives the framework's modules, so the same
lines run under ``torch`` and under ``minae`` (the only difference is the import).

    import torch, torch.nn as nn, torch.nn.functional as F
    VAE, loss_function = build(torch, nn, F)

    import minae, minae.nn as nn, minae.nn.functional as F
    VAE, loss_function = build(minae, nn, F)
"""

from __future__ import annotations


def build(torch, nn, F):
    """The model class and the loss function, over the framework given as ``torch``/``nn``/``F``."""

    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, 400)
            self.fc21 = nn.Linear(400, 20)
            self.fc22 = nn.Linear(400, 20)
            self.fc3 = nn.Linear(20, 400)
            self.fc4 = nn.Linear(400, 784)

        def encode(self, x):
            h1 = F.relu(self.fc1(x))
            return self.fc21(h1), self.fc22(h1)

        def reparameterize(self, mu, logvar):
            std = torch.exp(0.5 * logvar)
            eps = torch.randn_like(std)
            return mu + eps * std

        def decode(self, z):
            h3 = F.relu(self.fc3(z))
            return torch.sigmoid(self.fc4(h3))

        def forward(self, x):
            mu, logvar = self.encode(x.view(-1, 784))
            z = self.reparameterize(mu, logvar)
            return self.decode(z), mu, logvar

    def loss_function(recon_x, x, mu, logvar):
        BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
        KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return BCE + KLD

    return VAE, loss_function

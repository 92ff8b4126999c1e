"""Every model of the lecture, built only from minae's own parts."""

from .autoencoders import (
    CORRUPTIONS,
    Autoencoder,
    ContractiveAutoencoder,
    DenoisingAutoencoder,
    gaussian_noise,
    masking_noise,
    reconstruction_cost,
    salt_and_pepper,
)
from .ebm import ConditionalLatentEBM, LatentEBM
from .targetprop import TargetProp
from .vae import VAE

__all__ = [
    "Autoencoder",
    "DenoisingAutoencoder",
    "ContractiveAutoencoder",
    "VAE",
    "LatentEBM",
    "ConditionalLatentEBM",
    "TargetProp",
    "CORRUPTIONS",
    "gaussian_noise",
    "masking_noise",
    "salt_and_pepper",
    "reconstruction_cost",
]

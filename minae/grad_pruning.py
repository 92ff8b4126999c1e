"""minae.grad's pruning, kept out of ``autograd.py``: skip every branch that leads to no wanted input."""

from __future__ import annotations

from . import autograd  # (imported by autograd: read at call time only)


class Pruning:
    """Which functions below ``roots`` lead to a captured tensor (``capture``: {id(tensor): …})."""

    def __init__(self, roots, capture):
        self.capture = capture
        order, seen, stack = [], set(), [t.grad_fn for t in roots if t.grad_fn is not None]
        # A function freed by an earlier backward has forgotten its inputs: whether it leads to a captured tensor is
        # unknown, so it is wanted, and the walk reaching it raises the freed-graph error (pruned, it left the
        # inputs below it without a gradient: "not used", or with allow_unused a silent None).
        freed = set()
        while stack:  # every function below the roots, without recursion
            f = stack.pop()
            if f in seen:
                continue
            seen.add(f)
            if f.inputs is None:
                freed.add(f)
                continue
            order.append(f)
            stack.extend(m for m in _makers(f) if m is not None)
        self.wanted = wanted = set(freed)
        # inputs are always of a lower generation than the function they feed, so one ascending pass suffices
        for f in sorted(order, key=lambda f: f.generation):
            if any(id(x) in capture or m in wanted for x, m in zip(f.inputs, _makers(f))):
                wanted.add(f)

    def mask(self, f) -> tuple:
        """f's needs_grad, less the inputs whose gradient reaches no captured tensor."""
        wanted, capture = self.wanted, self.capture
        edges = zip(f.inputs, _makers(f), f.needs_grad)
        return tuple(need and (id(x) in capture or m in wanted) for x, m, need in edges)


def _makers(f) -> list:
    """The function that made each of f's inputs when f ran (None for a leaf or a constant)."""
    return [autograd.maker(f, x) if isinstance(x, autograd.Tensor) else None for x in f.inputs]

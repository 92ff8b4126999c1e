"""minae.grad's pruning, kept out of ``autograd.py``: skip every branch that leads to no wanted input."""

from __future__ import annotations


def leading_to(roots, capture) -> set:
    """The functions of the graph below ``roots`` through which some captured tensor can be reached."""
    order, seen, stack = [], set(), [t.grad_fn for t in roots if t.grad_fn is not None]
    while stack:  # every function below the roots, without recursion
        f = stack.pop()
        if f in seen or f.inputs is None:
            continue
        seen.add(f)
        order.append(f)
        stack.extend(x.grad_fn for x in f.inputs if getattr(x, "grad_fn", None) is not None)  # tensors' makers
    wanted = set()
    # inputs are always of a lower generation than the function they feed, so one ascending pass suffices
    for f in sorted(order, key=lambda f: f.generation):
        if any(id(x) in capture or getattr(x, "grad_fn", None) in wanted for x in f.inputs):
            wanted.add(f)
    return wanted


def pruned_mask(f, wanted, capture) -> tuple:
    """minae.grad wants only some gradients: no input gets one that leads to none of them."""
    return tuple(need and (id(x) in capture or x.grad_fn in wanted) for x, need in zip(f.inputs, f.needs_grad))

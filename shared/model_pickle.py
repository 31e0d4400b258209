"""A model as bytes: pickle, with River's binary-search-tree splitter nodes written flat.

River's regression trees keep, per leaf and numeric feature, a binary search tree of the values
seen (`EBSTNode`; `ExhaustiveNode` for AMRules' and the classifiers' exhaustive splitter). On
values that arrive in order (a date, a counter) that tree is a chain as long as the leaf's
stream, and pickle walks it recursively: past ~700 ordered values a bagging of Hoeffding tree
regressors no longer pickled (RecursionError), so its snapshots, versions and compactions
failed (a version answered 500). River copies these nodes iteratively (`__deepcopy__`) but
pickles them by default; here a whole node tree pickles as one flat list of its nodes' fields
with their children's places, and is rebuilt without recursion: the same nodes, the same
values, so the model learns and predicts on exactly as before.

The reducer is registered (copyreg) for a node class once its module is loaded: a model that
holds such nodes has loaded it. Pickles name `_rebuilt_tree` by its path: keep it.
"""

from __future__ import annotations

import copyreg
import pickle
import sys
from typing import Any

# (module, class) of the nodes pickled flat: each has __slots__ with `_left` / `_right`
TREE_NODES = (
    ("river.tree.splitter.ebst_splitter", "EBSTNode"),
    ("river.tree.splitter.exhaustive_splitter", "ExhaustiveNode"),
)
_CHILDREN = ("_left", "_right")
_registered: set[str] = set()


def dumps(model: Any) -> bytes:
    """`pickle.dumps(model)` at the highest protocol, node trees flat."""
    register_loaded()
    return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)


def register_loaded() -> None:
    """Register the flat reducer for each node class whose module is loaded (cheap when
    all are: two look-ups)."""
    if len(_registered) == len(TREE_NODES):
        return
    for module, name in TREE_NODES:
        loaded = sys.modules.get(module)
        if name not in _registered and loaded is not None:
            copyreg.pickle(getattr(loaded, name), _flat_tree)
            _registered.add(name)


Record = tuple[tuple[Any, ...], int, int]  # the node's other fields, left's and right's index


def _flat_tree(root: Any) -> tuple[Any, tuple[Any, ...]]:
    """The tree under `root` in preorder: each node's fields (but its children) and the
    indexes of its children in the list (-1: none)."""
    cls = type(root)
    fields = tuple(f for f in cls.__slots__ if f not in _CHILDREN)
    order: list[Any] = []
    place: dict[int, int] = {}
    stack = [root]
    while stack:
        node = stack.pop()
        place[id(node)] = len(order)
        order.append(node)
        stack.extend(c for c in (node._right, node._left) if c is not None)
    records: list[Record] = [
        (
            tuple(getattr(node, f) for f in fields),
            -1 if node._left is None else place[id(node._left)],
            -1 if node._right is None else place[id(node._right)],
        )
        for node in order
    ]
    return _rebuilt_tree, (cls, fields, records)


def _rebuilt_tree(cls: type, fields: tuple[str, ...], records: list[Record]) -> Any:
    nodes = [cls.__new__(cls) for _ in records]
    for node, (values, left, right) in zip(nodes, records, strict=True):
        for field, value in zip(fields, values, strict=True):
            setattr(node, field, value)
        node._left = nodes[left] if left >= 0 else None
        node._right = nodes[right] if right >= 0 else None
    return nodes[0]

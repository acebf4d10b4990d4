"""The Open Images label hierarchy (``bbox_labels_600_hierarchy.json``, ``challenge-2019-label500-hierarchy.json``).

The JSON file is a tree of ``{"LabelName": mid, "Subcategory": [node, ...]}`` nodes under a virtual root
(``/m/0bl9f``, "Entity"). A label may sit under several parents (the hierarchy is a DAG); ``Part`` lists
(body parts in the 600-class file) are not parent-child relations and are ignored, as the official
expansion tool ignores them. The root is never a class and never an ancestor (the tool skips it).

``Hierarchy.ancestors(label)`` / ``descendants(label)`` are what the Open Images Challenge metric uses
to expand the ground truth (``oid_eval.expand_hierarchy``) and what the detector uses to emit parent
classes (``--emit-ancestors``) or to expand training labels (``--train-labels expanded``).

Malformed files fail early: a node without ``LabelName``, a ``Subcategory`` that is not a list, a
label that is its own ancestor (a cycle), each named with the file and the node's JSON path.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["HierarchyError", "Hierarchy", "load_hierarchy"]


class HierarchyError(ValueError):
    """A hierarchy file that cannot be used, naming the file and the node."""


class Hierarchy:
    """Parent / child relations of a label hierarchy (the virtual root excluded).

    ``labels``: every non-root label in order of first appearance (depth-first, file order);
    ``parents[label]`` / ``children[label]``: direct relations, in file order, without the root.
    """

    def __init__(self, root: str, parents: dict, children: dict, labels: list, source: str = "hierarchy"):
        self.root = root
        self.parents = parents
        self.children = children
        self.labels = labels
        self.source = source
        self._anc: dict[str, tuple] = {}
        self._desc: dict[str, tuple] = {}
        self._check_acyclic()

    def __contains__(self, label) -> bool:
        return label in self.parents

    def __len__(self) -> int:
        return len(self.labels)

    def _check_acyclic(self) -> None:
        state = {}  # 1: on the current path, 2: done
        for start in self.labels:
            if state.get(start):
                continue
            stack = [(start, iter(self.children[start]))]
            path = [start]
            state[start] = 1
            while stack:
                node, it = stack[-1]
                child = next(it, None)
                if child is None:
                    state[node] = 2
                    stack.pop()
                    path.pop()
                    continue
                if state.get(child) == 1:
                    cycle = path[path.index(child):] + [child]
                    raise HierarchyError(f"{self.source}: cycle in the hierarchy: {' -> '.join(cycle)} "
                                         f"(a label is its own ancestor)")
                if not state.get(child):
                    state[child] = 1
                    path.append(child)
                    stack.append((child, iter(self.children[child])))

    def ancestors(self, label: str) -> tuple:
        """Every ancestor of ``label`` (root excluded), nearest first, each once (breadth-first)."""
        if label not in self.parents:
            raise KeyError(f"{label!r} is not in {self.source}")
        out = self._anc.get(label)
        if out is None:
            out = self._closure(label, self.parents)
            self._anc[label] = out
        return out

    def descendants(self, label: str) -> tuple:
        """Every descendant of ``label``, nearest first, each once (breadth-first)."""
        if label not in self.children:
            raise KeyError(f"{label!r} is not in {self.source}")
        out = self._desc.get(label)
        if out is None:
            out = self._closure(label, self.children)
            self._desc[label] = out
        return out

    @staticmethod
    def _closure(label: str, edges: dict) -> tuple:
        seen, order, frontier = {label}, [], [label]
        while frontier:
            nxt = []
            for node in frontier:
                for other in edges[node]:
                    if other not in seen:
                        seen.add(other)
                        order.append(other)
                        nxt.append(other)
            frontier = nxt
        return tuple(order)

    def depth(self) -> int:
        """Levels below the root (1 for a flat list of classes)."""
        memo: dict[str, int] = {}

        def d(label):
            if label not in memo:
                memo[label] = 1 + max((d(p) for p in self.parents[label]), default=0)
            return memo[label]
        return max((d(label) for label in self.labels), default=0)

    @classmethod
    def from_dict(cls, tree: dict, source: str = "hierarchy") -> Hierarchy:
        """Parse the JSON object (checked: LabelName present, Subcategory a list)."""
        if not isinstance(tree, dict) or "LabelName" not in tree:
            raise HierarchyError(f"{source}: the top-level node has no 'LabelName'")
        root = tree["LabelName"]
        parents: dict[str, list] = {}
        children: dict[str, list] = {}
        labels: list[str] = []
        stack = [(tree, "$", None)]
        while stack:
            node, where, parent = stack.pop()
            if not isinstance(node, dict):
                raise HierarchyError(f"{source}: node {where} is a {type(node).__name__}, not an object")
            label = node.get("LabelName")
            if not isinstance(label, str) or not label:
                raise HierarchyError(f"{source}: node {where} has no 'LabelName'")
            subs = node.get("Subcategory", [])
            if not isinstance(subs, list):
                raise HierarchyError(f"{source}: node {where} ({label}): 'Subcategory' must be a list, "
                                     f"got {type(subs).__name__}")
            if label == root and parent is not None:
                raise HierarchyError(f"{source}: node {where} repeats the root {label} (a cycle)")
            if label != root:
                if label not in parents:
                    parents[label], children[label] = [], []
                    labels.append(label)
                if parent is not None and parent != root and parent not in parents[label]:
                    parents[label].append(parent)
                    children[parent].append(label)
            # push in reverse so that siblings are visited in file order
            for i in range(len(subs) - 1, -1, -1):
                stack.append((subs[i], f"{where}.Subcategory[{i}]", label))
        return cls(root, parents, children, labels, source)


def load_hierarchy(src) -> Hierarchy:
    """A ``Hierarchy`` from a path, a parsed JSON dict, or a ``Hierarchy`` (returned as is)."""
    if isinstance(src, Hierarchy):
        return src
    if isinstance(src, dict):
        return Hierarchy.from_dict(src)
    path = Path(os.fspath(src))
    if not path.is_file():
        raise HierarchyError(f"{path}: hierarchy file not found")
    try:
        tree = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise HierarchyError(f"{path}: not valid JSON ({e})") from None
    return Hierarchy.from_dict(tree, source=str(path))

"""The symbolic links of a whole archive, once every member is known: where each leads, loops, size.

The stored tree dereferences links (``compiler.workspace.walk``): a link to a file is stored as that
file, a link to a folder as a copy of the folder. So an archive's links must end inside it
(``MemberTable.resolve``), must not form a loop through several folder links (``a/l -> ../b``,
``b/l -> ../a``: each alone is fine, the walk would go round for ever), and the content they repeat
counts against the archive's byte limit like the content it holds (one 1 GiB file and a thousand
links to it is a terabyte to store), the files and folders they repeat against the walk's bound.

A link L "steps into" a folder link L2 when L2 lies in the folder L leads to; the walk follows those
steps, so a loop is a cycle of steps. Folder links of one folder are a run of the sorted link names,
so each link's steps are found by bisection and checked in one depth-first pass.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from compiler.errors import excerpt
from compiler.workspace.archive_members import Kind, LinkRefused, MemberProblem, MemberTable

MAX_STEPS = 1_000_000  # (link, link in the folder it leads to) pairs looked at


def _under(ordered: list[str], folder: str) -> range:
    """The indexes of the sorted names that lie below ``folder`` ('0' is the character after '/')."""
    return range(bisect.bisect_left(ordered, folder + "/"), bisect.bisect_left(ordered, folder + "0"))


def _resolve_all(table: MemberTable) -> dict[str, str]:
    ends = {}
    for path in table.links:
        try:
            ends[path] = table.resolve(path)
        except MemberProblem as exc:
            raise LinkRefused(path, exc) from None
    return ends


def _order(table: MemberTable, ends: dict[str, str], ordered: list[str]) -> list[str]:
    """The folder links, each after every folder link it steps into; LinkRefused for a loop."""
    folders = {path for path, end in ends.items() if table.kinds.get(end) is Kind.DIR}
    if sum(len(_under(ordered, ends[path])) for path in folders) > MAX_STEPS:
        first = min(folders)
        problem = MemberProblem(f"is one of too many links into folders of links (over {MAX_STEPS} pairs)")
        raise LinkRefused(first, problem)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    done: list[str] = []
    for start in sorted(folders):
        if start in state:
            continue
        state[start], stack = 1, [(start, iter(_under(ordered, ends[start])))]
        while stack:
            path, pending = stack[-1]
            index = next(pending, None)
            if index is None:
                state[path] = 2
                done.append(path)
                stack.pop()
                continue
            child = ordered[index]
            if child not in folders or state.get(child) == 2:
                continue
            if state.get(child) == 1:
                raise LinkRefused(child, MemberProblem(
                    f"is a link to '{excerpt(table.links[child], 60)}', a loop through '{excerpt(path, 60)}'"))
            state[child] = 1
            stack.append((child, iter(_under(ordered, ends[child]))))
    return done


@dataclass(frozen=True)
class Repeated:
    """What one link adds to the stored tree: the bytes and the files and folders it repeats."""

    path: str
    bytes: int
    entries: int


def link_contents(table: MemberTable, cap: int) -> list[Repeated]:
    """Check every link of the whole archive; what each one adds to the stored tree (each figure capped
    at ``cap`` + 1). A file link adds the file's bytes; a folder link its folder's files, folders and
    the links in it, themselves expanded."""
    ends = _resolve_all(table)
    ordered = sorted(table.links)
    paths = sorted(path for path in table.kinds if path)
    running = [0]
    for path in paths:
        running.append(running[-1] + table.sizes.get(path, 0))
    adds = {path: (table.sizes.get(end, 0), 0) for path, end in ends.items() if table.kinds.get(end) is Kind.FILE}
    for path in _order(table, ends, ordered):  # a folder link repeats its folder's files and links
        under = _under(paths, ends[path])
        size, count = running[under.stop] - running[under.start], len(under)
        for i in _under(ordered, ends[path]):
            more = adds.get(ordered[i], (0, 0))
            size, count = size + more[0], count + more[1]
        adds[path] = (min(size, cap + 1), min(count, cap + 1))
    return [Repeated(path, *adds.get(path, (0, 0))) for path in table.links]

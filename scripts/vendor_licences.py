#!/usr/bin/env python3
"""Checks that debian/copyright tells the truth about the vendored crates.

For every crate in the vendored directory (what the source package ships),
the Files paragraph of debian/copyright that covers `vendor/<crate-dir>/`
(the last matching one, as DEP-5 reads them) must name the licence the
crate's Cargo.toml declares (or some of the alternatives it offers), and
that licence must be one we accept. A
dependency update that brings a crate under another licence fails here
with the crate and the paragraph it needs.

    scripts/vendor_licences.py VENDOR_DIR debian/copyright
"""
import fnmatch
import re
import sys
import tomllib
from pathlib import Path

# Permissive licences compatible with shipping the library as
# MIT OR Apache-2.0 (SPDX names).
ACCEPTED = {"MIT", "Apache-2.0", "ISC", "BSD-2-Clause", "BSD-3-Clause", "Unicode-3.0",
            "Unicode-DFS-2016", "Unlicense", "Zlib", "0BSD", "CC0-1.0", "BSL-1.0"}


def parse(expr):
    """An SPDX expression (AND binds tighter than OR; "/" is an old OR) as
    a canonical tree: a licence name, or (op, frozenset of trees)."""
    tokens = re.findall(r"\(|\)|[^\s()]+", expr.replace("/", " OR "))
    pos = 0

    def peek():
        return tokens[pos].upper() if pos < len(tokens) else None

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def combine(op, items):
        flat = set()
        for item in items:
            flat |= item[1] if isinstance(item, tuple) and item[0] == op else {item}
        return (op, frozenset(flat)) if len(flat) > 1 else flat.pop()

    def alternatives():
        items = [conjunction()]
        while peek() == "OR":
            take()
            items.append(conjunction())
        return combine("OR", items)

    def conjunction():
        items = [atom()]
        while peek() == "AND":
            take()
            items.append(atom())
        return combine("AND", items)

    def atom():
        if peek() == "(":
            take()
            tree = alternatives()
            if take() != ")":
                raise ValueError(f"unbalanced parentheses in {expr!r}")
            return tree
        if peek() in (None, ")", "AND", "OR", "WITH"):
            raise ValueError(f"bad licence expression {expr!r}")
        name = take()
        if peek() == "WITH":
            take()
            if peek() in (None, "(", ")", "AND", "OR", "WITH"):
                raise ValueError(f"bad licence expression {expr!r}")
            name += " WITH " + take()
        return name

    tree = alternatives()
    if pos != len(tokens):
        raise ValueError(f"bad licence expression {expr!r}")
    return tree


def dep5_to_spdx(expr):
    """DEP-5's "A or B, and C" (the comma separates the loosest level)."""
    parts = re.split(r",\s*(and|or)\s+", expr)
    out = f"({parts[0]})"
    for op, part in zip(parts[1::2], parts[2::2]):
        out = f"({out} {op.upper()} ({part}))"
    return re.sub(r"\b(and|or)\b", lambda m: m.group(1).upper(), out)


def chosen_from(named, declared):
    """Whether distributing under `named` is what `declared` allows: the
    same licence, or some of the alternatives a crate offers."""
    if named == declared:
        return True
    if isinstance(declared, tuple) and declared[0] == "OR":
        options = named[1] if isinstance(named, tuple) and named[0] == "OR" else {named}
        return options <= declared[1]
    return False


def acceptable(tree):
    if isinstance(tree, str):
        return tree in ACCEPTED
    op, items = tree
    check = any if op == "OR" else all
    return check(acceptable(item) for item in items)


def files_paragraphs(copyright_text):
    paragraphs = []
    for block in re.split(r"\n\s*\n", copyright_text):
        fields, key = {}, None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += " " + line.strip()
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = value.strip()
        if "Files" in fields and "License" in fields:
            paragraphs.append((fields["Files"].split(), fields["License"]))
    return paragraphs


def main(vendor_dir, copyright_path):
    paragraphs = files_paragraphs(Path(copyright_path).read_text())
    problems = []
    crates = sorted(p for p in Path(vendor_dir).iterdir() if (p / "Cargo.toml").is_file())
    for crate in crates:
        package = tomllib.loads((crate / "Cargo.toml").read_text())["package"]
        declared = package.get("license")
        if not declared:
            problems.append(f"{crate.name}: no SPDX licence in Cargo.toml (license-file "
                            f"{package.get('license-file')!r}): review it and write its paragraph")
            continue
        path = f"vendor/{crate.name}/Cargo.toml"
        covering = [lic for patterns, lic in paragraphs
                    if any(fnmatch.fnmatchcase(path, p) or fnmatch.fnmatchcase(path, p + "/*")
                           for p in patterns)]
        if not acceptable(parse(declared)):
            problems.append(f"{crate.name}: licence {declared!r} is not one we accept")
        elif not covering:
            problems.append(f"{crate.name}: no Files paragraph covers vendor/{crate.name}")
        elif not chosen_from(parse(dep5_to_spdx(covering[-1])), parse(declared)):
            problems.append(f"{crate.name}: Cargo.toml says {declared!r}, debian/copyright says "
                            f"{covering[-1]!r}: add a Files paragraph for vendor/{crate.name}")
    for problem in problems:
        print(f"vendor licences: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"vendor licences: {len(crates)} crates, each under the licence debian/copyright names")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

#!/usr/bin/env python3
"""Writes include/scylla_shard_cdef.h from include/scylla_shard.h: the same
types and functions with no preprocessor line at all, for LuaJIT's
`ffi.cdef` and Python cffi's `FFI.cdef`, which do not preprocess.

* every `#define SSHARD_X N` becomes an enum constant (`enum { SSHARD_X = N };`),
  consecutive ones in one enum, so `lib.SSHARD_STATUS_OK` works from LuaJIT's
  library namespace and from cffi;
* array sizes written with such a constant get its number (both parsers
  accept literals there, not every one accepts an enum constant);
* the include guard, the `#include`s and the C++ `extern "C"` wrapper go;
  comments go too (the documented header is scylla_shard.h).

    scripts/gen_cdef.py [HEADER [OUTPUT]]   (run by `make header`)
    scripts/gen_cdef.py --layout-program OUT.c   (the struct layouts, for the load tests)
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFINE = re.compile(r"^#define\s+(SSHARD_[A-Z0-9_]+)\s+(-?(?:0x[0-9A-Fa-f]+|\d+))\s*$")


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def convert(header: str) -> str:
    constants = {}
    out = []
    pending = []  # consecutive constants, flushed as one enum

    def flush():
        if pending:
            body = ",\n".join(f"  {name} = {value}" for name, value in pending)
            out.append("enum {\n" + body + "\n};")
            pending.clear()

    lines = strip_comments(header).splitlines()
    skip_depth = 0
    for line in lines:
        stripped = line.strip()
        match = DEFINE.match(stripped)
        if match:
            name, value = match.groups()
            constants[name] = int(value, 0)
            pending.append((name, value))
            continue
        if stripped.startswith("#"):
            # Guard, includes and the `#ifdef __cplusplus` blocks.
            if stripped.startswith("#ifdef __cplusplus"):
                skip_depth = 1
            elif stripped.startswith("#endif") and skip_depth:
                skip_depth = 0
            elif stripped.startswith("#define SSHARD_"):
                sys.exit(f"gen_cdef: a constant that is not a plain integer: {stripped}")
            elif not re.match(r"#(ifndef|define|endif|include)\b", stripped):
                sys.exit(f"gen_cdef: unexpected preprocessor line: {stripped}")
            continue
        if skip_depth:
            continue  # `extern "C" {` and its closing brace
        if not stripped:
            continue
        flush()
        out.append(line.rstrip())
    flush()

    def literal(match: re.Match) -> str:
        name = match.group(1)
        if name not in constants:
            sys.exit(f"gen_cdef: array size {name} is not a #define of the header")
        return f"[{constants[name]}]"

    text = "\n".join(out)
    text = re.sub(r"\[(SSHARD_[A-Z0-9_]+)\]", literal, text)
    # One blank line between top-level declarations, for reading.
    text = re.sub(r"(;|\})\n(?=[a-z])", r"\1\n\n", text)
    note = ("/* libscylla_shard declarations for LuaJIT ffi.cdef and cffi: generated from\n"
            "   scylla_shard.h by scripts/gen_cdef.py (`make header`); documented there. */\n")
    return note + text + "\n"


def check_no_aggregates_by_value(text: str) -> None:
    """LuaJIT compiles no call that passes or returns a struct by value, so
    every function takes and returns scalars and pointers only."""
    structs = set(re.findall(r"typedef struct \w+ \{.*?\} (\w+);", text, flags=re.S))
    for decl in re.findall(r"^[^\n;{}]*\([^;{}]*\);", text, flags=re.M):
        ret, _, params = decl.partition("(")
        pieces = [ret.rsplit(None, 1)[0]] + params.rstrip(");").split(",")
        for piece in pieces:
            words = piece.replace("const", "").split()
            if words and "*" not in piece and any(w in structs for w in words):
                sys.exit(f"gen_cdef: a struct passes by value in: {decl}")


def layout_program(text: str) -> str:
    """A C program printing `name sizeof` and `name.field offsetof` for every
    struct of the header, so the cdef file's layouts can be compared with
    the C compiler's (tests/lua/test_cdef.lua, tests/python/test_cdef.py)."""
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "scylla_shard.h"',
             "int main(void) {"]
    for body, name in re.findall(r"typedef struct \w+ \{(.*?)\} (\w+);", text, flags=re.S):
        lines.append(f'  printf("{name} %zu\\n", sizeof({name}));')
        for field in re.findall(r"(\w+)(?:\[\d+\])?;", body):
            lines.append(f'  printf("{name}.{field} %zu\\n", offsetof({name}, {field}));')
    lines += ["  return 0;", "}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--layout-program":
        text = convert((ROOT / "include/scylla_shard.h").read_text())
        Path(sys.argv[2]).write_text(layout_program(text))
        return
    header = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "include/scylla_shard.h"
    output = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "include/scylla_shard_cdef.h"
    result = convert(header.read_text())
    check_no_aggregates_by_value(result)
    if "#" in result:
        sys.exit("gen_cdef: a preprocessor character survived")
    output.write_text(result)


if __name__ == "__main__":
    main()

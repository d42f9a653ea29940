"""Runs a scylla-driver program on scylla_shard: the alias, then the
program unchanged (`python compat_alias.py program.py args...`)."""

import runpy
import sys

import scylla_shard.compat

scylla_shard.compat.install()
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")

"""One program written against scylla-driver's API (compat_script.py) runs
unchanged against scylla-driver and against scylla_shard (through the
scylla_shard.compat alias) on the same emulator, and prints the same
results."""

import os
import subprocess
import sys

from sshard_support import library_env, start_emulator

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "compat_script.py")


def _run(argv, env):
    p = subprocess.run([sys.executable] + argv, env=env, capture_output=True, text=True,
                       timeout=180)
    assert p.returncode == 0, "%s failed:\n%s\n%s" % (argv, p.stdout, p.stderr[-4000:])
    return p.stdout.splitlines()


def test_same_program_same_results(emulator_binary, tmp_path):
    emu = start_emulator(emulator_binary, tmp_path, 3, 4)
    try:
        env = library_env()
        args = [emu.ip(0), str(emu.port)]
        with_driver = _run([SCRIPT] + args + ["compat_driver"], env)
        with_sshard = _run([os.path.join(HERE, "compat_alias.py"), SCRIPT] + args
                           + ["compat_sshard"], env)
    finally:
        emu.stop()
    assert with_driver[-1] == "done: True" and len(with_driver) > 25, with_driver
    mismatches = [(a, b) for a, b in zip(with_driver, with_sshard) if a != b]
    assert not mismatches and len(with_driver) == len(with_sshard), "\n".join(
        "scylla-driver: %s\nscylla_shard:  %s" % m for m in mismatches)

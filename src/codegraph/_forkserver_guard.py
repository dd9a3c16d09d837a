"""Preloaded by the forkserver of `procs.process_pool`: it ends when its owner does."""

from codegraph.procs import guard_forkserver

guard_forkserver()

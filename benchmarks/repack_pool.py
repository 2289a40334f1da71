"""Rewrite a campaign store with every dataset gzip-compressed, to keep it small.

Usage::

    python benchmarks/repack_pool.py STORE [--out OUT]

The oracle pool is kept in the repository, which takes files under 20 MB. The
daemon writes most columns uncompressed (cheap appends while it runs); a finished
pool compresses to about half, mostly because rejected points hold NaN features
and masses. Every dataset keeps its chunks, maximum shape, fill value and
attributes, so the copy opens, reads and grows like the original
(``scynet-al resume`` continues it). But a resumed repacked store rewrites
compressed chunks on every record and grows by about 100 kB per point added (the
pool: 5 MB to 149 MB over 1 400 more draws; its data stay whole), so repack it
again once the run has stopped. Without ``--out`` the store is replaced
atomically (temporary file, then rename); run it only while no writer has the
store open.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import h5py

#: gzip level: 4 compresses these columns nearly as well as 9, much faster.
LEVEL = 4


def repack(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` with every dataset compressed."""
    with (
        h5py.File(source, "r", libver="latest", swmr=True) as src,
        h5py.File(target, "w", libver="latest") as dst,
    ):
        dst.attrs.update(dict(src.attrs))

        def copy(name: str, obj: h5py.HLObject) -> None:
            if isinstance(obj, h5py.Group):
                group = dst.require_group(name)
                group.attrs.update(dict(obj.attrs))
                return
            data = obj[()]
            dataset = dst.create_dataset(
                name,
                data=data,
                maxshape=obj.maxshape,
                chunks=obj.chunks,
                dtype=obj.dtype,
                # strings were created with the default (all-zero) fill; a long
                # one written out would not fit in the dataset's header
                fillvalue=None if obj.dtype.kind == "S" else obj.fillvalue,
                compression="gzip",
                compression_opts=LEVEL,
                shuffle=obj.dtype.kind in "fiu",
            )
            dataset.attrs.update(dict(obj.attrs))

        src.visititems(copy)


def main(argv: list[str] | None = None) -> int:
    """Repack a store in place or into ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    target = args.out or args.store.with_name(f".{args.store.name}.repacking")
    before = args.store.stat().st_size
    repack(args.store, target)
    if args.out is None:
        os.replace(target, args.store)
        target = args.store
    after = target.stat().st_size
    print(f"{args.store}: {before / 1e6:.1f} MB -> {target}: {after / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

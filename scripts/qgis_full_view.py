"""QGIS's full view of a lazy output: how long, and which blocks it cost.

Not a test: scripts/bench.sh --lazy (section 6) prints its line.  Run with
Debian's python3 (python3-qgis) on a file of a rasterfs mount:

    /usr/bin/python3 scripts/qgis_full_view.py MOUNT/big.tif@hillshade [SIZE]

Adds the file as a layer to a headless QGIS (tests/mount/qgisutil.py) and
renders its full extent at SIZE x SIZE pixels (default 800), then prints
one line of JSON: seconds from the layer being created to the end of the
first render ("add_to_rendered"), the render alone, pixels drawn, whether
QGIS tried to write X.aux.xml, and the mount's lazy counters before and
after (.rasterfs/stats: lazy_blocks are level-0 blocks, lazy_ovr_blocks
overview blocks, docs/large-outputs.md).
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "mount"))
import qgisutil  # noqa: E402


def mount_root(path):
    d = os.path.dirname(os.path.abspath(path))
    while not os.path.ismount(d) and d != "/":
        d = os.path.dirname(d)
    return d


def counters(root):
    with open(os.path.join(root, ".rasterfs", "stats")) as f:
        s = json.load(f)
    return {k: s[k] for k in ("lazy_blocks", "lazy_ovr_blocks",
                              "lazy_opens")}


def main():
    path = sys.argv[1]
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 800
    root = mount_root(path)
    before = counters(root)
    r = qgisutil.run(path, size=(size, size), timeout=600,
                     file_stats=False)
    after = counters(root)
    out = {
        "valid": r["valid"],
        "add_to_rendered": r["t"].get("add_to_rendered"),
        "open": r["t"].get("open"),
        "render": (r["t"].get("render") or [None])[0],
        "nontransparent": (r.get("renders") or [{}])[0].get(
            "nontransparent"),
        "errors": (r.get("renders") or [{}])[0].get("errors"),
        "stats_accuracy": (r.get("renderer") or {}).get("accuracy"),
        "aux_xml": os.path.exists(path + ".aux.xml"),
        "level0_blocks": after["lazy_blocks"] - before["lazy_blocks"],
        "ovr_blocks": after["lazy_ovr_blocks"] - before["lazy_ovr_blocks"],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()

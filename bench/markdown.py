"""`python -m bench.markdown RUN.json`: a run's table as Markdown, for docs/benchmarks.md.

Reads the file `python -m bench --json-out` wrote; prints the same rows, in
the same order, as the run printed, then the memory and the targets.
"""

import argparse
import json
import sys
from pathlib import Path

from bench.report import Report
from bench.runner import PEER_NAME


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.markdown")
    parser.add_argument("run", type=Path, help="a JSON file from --json-out")
    args = parser.parse_args(argv)
    try:
        data = json.loads(args.run.read_text())
        report = Report.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"bench.markdown: cannot read {args.run}: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(report.markdown(PEER_NAME))
    return 0


if __name__ == "__main__":
    sys.exit(main())

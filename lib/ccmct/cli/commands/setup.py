"""``ccmct setup``: download the real data set (resumable, verified), check it, or make the synthetic one."""

from __future__ import annotations

import argparse

from ccmct.cli.common import (
    add_data_root,
    add_json,
    check_output,
    count,
    positive_float,
    print_json,
    refuse_real_data_root,
)

EPILOG = """examples:
  ccmct setup --data-root data                                  everything (4 databases, 32 slides, ~37 GB)
  ccmct setup --data-root data --only databases                 the 4 SlideRunner databases only
  ccmct setup --data-root data --slides be10fa37ad6e88e1f406    databases + one slide
  ccmct setup --data-root data --base-url http://mirror/ccmct   from a mirror: URL/databases/..., URL/WSI/...
  ccmct setup --data-root data --verify                         check files against checksums.md5 and open them
  ccmct setup --data-root data --synthetic tiny                 generate the synthetic data set instead

A rerun resumes interrupted files (<file>.part) and skips complete ones. Exit code 0 only when every
requested file is complete; 1 when some failed (the summary names them and the command to retry).
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "setup", help="download the real data set (resumable, verified) or generate the synthetic one",
        description="Download the MITOS_WSI_CCMCT databases (MEL, HEAEL, ODAEL, Tumorzone) and 32 slides from "
                    "figshare (or a mirror) into DATA_ROOT/databases and DATA_ROOT/WSI, resuming interrupted "
                    "files, retrying with back-off, and checking that every file opens. The MD5 of every "
                    "downloaded file is recorded in DATA_ROOT/checksums.md5.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_root(parser)
    parser.add_argument("--only", choices=("databases", "slides"), default=None,
                        help="fetch only the databases or only the slides (default: both)")
    parser.add_argument("--slides", nargs="+", metavar="NAME", default=None,
                        help="only these slides (file names, '.svs' optional; default: all 32)")
    parser.add_argument("--base-url", metavar="URL", default=None,
                        help="mirror to use instead of figshare: files come from URL/<relative destination>, "
                             "e.g. URL/WSI/<name>.svs (default: figshare)")
    parser.add_argument("--workers", type=count(1), default=3, help="files downloaded in parallel (default 3)")
    parser.add_argument("--verify", action="store_true",
                        help="download nothing: check present files against checksums.md5 and open them; a "
                             "corrupt file is moved aside to <name>.corrupt")
    parser.add_argument("--synthetic", metavar="PRESET", default=None, choices=("tiny", "demo", "large"),
                        help="generate the synthetic data set (tiny, demo or large) into DATA_ROOT instead "
                             "of downloading")
    parser.add_argument("--attempts", type=count(1), default=8,
                        help="give a file up after this many consecutive failed attempts without new bytes "
                             "(default 8)")
    parser.add_argument("--backoff", type=positive_float, default=2.0,
                        help="seconds before the first retry, doubling each time up to 120 s (default 2)")
    parser.add_argument("--timeout", type=positive_float, default=60.0,
                        help="connect / read time-out per request, seconds (default 60)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_json(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.verify:
        from ccmct.cli.common import require_folder

        require_folder(args.data_root, "--data-root")
    check_output(args.data_root, kind="dir", what="--data-root")
    if args.synthetic:
        return _synthetic(args)
    from ccmct.data.download import RetryPolicy, download_dataset, verify_dataset
    from ccmct.errors import CcmctError

    progress = not (args.no_progress or args.json)
    if args.verify:
        report = verify_dataset(args.data_root, only=args.only, slides=args.slides, progress=progress)
    else:
        if args.attempts < 1 or args.workers < 1:
            raise CcmctError(f"--attempts and --workers must be at least 1, got {args.attempts} and {args.workers}")
        policy = RetryPolicy(attempts=args.attempts, backoff_s=args.backoff, timeout_s=args.timeout)
        report = download_dataset(args.data_root, only=args.only, slides=args.slides, base_url=args.base_url,
                                  workers=args.workers, policy=policy, progress=progress)
    if args.json:
        print_json(report.as_dict())
    else:
        print(report.summary())
    return 0 if report.ok else 1


def _synthetic(args: argparse.Namespace) -> int:
    from ccmct.synthetic import generate_dataset

    refuse_real_data_root(args.data_root, "--data-root")
    report = generate_dataset(args.data_root, preset=args.synthetic, seed=0,
                              progress=not (args.no_progress or args.json))
    if args.json:
        print_json(report)
    else:
        print(f"synthetic data set '{args.synthetic}' (seed 0) with {len(report['slides'])} slides in "
              f"{args.data_root}")
    return 0

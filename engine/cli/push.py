"""`tingxie-cli push`: share a model or LoRA adapter on the Hugging Face Hub, with its card."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "push",
        help="upload a model or LoRA adapter to the Hugging Face Hub with a model card",
        description="Upload MODEL_DIR (a model folder, or a tuning job's output folder: its "
        "merged model, or with --adapter its LoRA adapter) to REPO_ID with a generated model "
        "card (base model, data, held-out CER before/after, calibration, license). The token "
        "comes from HF_TOKEN or the system keyring; Tingxie never writes it anywhere.",
    )
    p.add_argument("model_dir", help="model folder or tuning output folder")
    p.add_argument("repo_id", help="owner/name on the Hub")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--adapter", action="store_true", help="share the LoRA adapter")
    p.add_argument(
        "--dry-run", action="store_true", help="list the files and print the card; upload nothing"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.tune.hub import HubError, plan_upload, push, resolve_token

    try:
        plan = plan_upload(args.model_dir, args.repo_id, private=args.private, adapter=args.adapter)
        if args.dry_run:
            print(f"would upload to {plan.repo_id} from {plan.folder}:")
            rewritten = dict(plan.rewritten)
            for rel in (*plan.files, "README.md"):
                note = " (a copy, its local paths reduced to names)" if rel in rewritten else ""
                print(f"  {rel}{note}")
            if plan.left_out:
                print("left out (subfolders are not part of the model):")
                for rel in plan.left_out:
                    print(f"  {rel}")
            print(plan.card)
            return 0
        url = push(plan, resolve_token(), progress=print)
    except HubError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"uploaded to {url}")
    return 0

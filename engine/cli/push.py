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
        "card (base model, data, held-out CER before/after, calibration, license, and the "
        "folder's own card when Tingxie did not write it). The license is the one the model's "
        "card or its base model's states, none when neither does. A tuned model's domain "
        "language model, built from its training transcripts, is left out unless "
        "--with-domain-lm. The token comes from HF_TOKEN or the system keyring; Tingxie never "
        "writes it anywhere.",
    )
    p.add_argument("model_dir", help="model folder or tuning output folder")
    p.add_argument("repo_id", help="owner/name on the Hub")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--adapter", action="store_true", help="share the LoRA adapter")
    p.add_argument(
        "--license",
        metavar="ID",
        help="the card's license (a Hub license id such as apache-2.0 or cc-by-nc-4.0), "
        "instead of the one the model's card states",
    )
    p.add_argument(
        "--with-domain-lm",
        action="store_true",
        help="also share the domain language model of a tuned model (lm/domain-*.arpa.gz): "
        "it holds the training transcripts, readable word for word",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="list the files and print the card; upload nothing"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from engine.tune.hub import HubError, plan_upload, push, resolve_token

    try:
        plan = plan_upload(
            args.model_dir,
            args.repo_id,
            private=args.private,
            adapter=args.adapter,
            license=args.license,
            domain_lm=args.with_domain_lm,
        )
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
            for note in plan.notes:
                print(f"note: {note}")
            print(plan.card)
            return 0
        url = push(plan, resolve_token(), progress=print)
    except HubError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"uploaded to {url}")
    return 0

"""`aksflight image build|lookup|push`: environment images without a container engine.

    aksflight image lookup -e ENV.yaml --registry HOST/REPO [--shared-registry HOST/REPO]
    aksflight image build  -e ENV.yaml --registry HOST/REPO [--shared-registry HOST/REPO]
        [--force-build] [--pip-arg ARG]... [--no-progress]
    aksflight image push SOURCE TARGET        (copy one image; the digest is kept)

Common: [--docker-config FILE] [--plain-http HOST]... [--acr-tenant TENANT] [-o text|json]

Exit codes: 0 done (lookup: found); 1 a registry or build failure (lookup: not found);
2 bad input. The environment file is described in docs/images.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aksflight.errors import UsageError


def _common(parser: argparse.ArgumentParser) -> None:
    registry_flags(parser)
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text")


def registry_flags(parser: argparse.ArgumentParser) -> None:
    """How to reach registries: shared by `image` and `deploy --environment`."""
    parser.add_argument(
        "--docker-config",
        type=Path,
        metavar="FILE",
        help="registry credentials (default: $DOCKER_CONFIG or ~/.docker)",
    )
    parser.add_argument(
        "--plain-http",
        action="append",
        default=[],
        metavar="HOST",
        help="talk HTTP, not HTTPS, to this registry (loopback always does)",
    )
    parser.add_argument(
        "--acr-tenant",
        default="",
        metavar="TENANT",
        help="Microsoft Entra tenant for ACR's token exchange",
    )


def _environment_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-e",
        "--environment",
        type=Path,
        required=True,
        metavar="FILE",
        help="the environment file (base image, requirements, ...)",
    )
    parser.add_argument(
        "--registry",
        required=True,
        metavar="HOST/REPO",
        help="the workspace registry and repository for environment images",
    )
    parser.add_argument(
        "--shared-registry",
        metavar="HOST/REPO",
        help="a shared registry looked up after the workspace one",
    )


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "image",
        help="build, look up and push environment images",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(
        dest="image_action", metavar="ACTION", parser_class=type(parser)
    )
    lookup = actions.add_parser("lookup", help="where the environment's image already is")
    _environment_flags(lookup)
    _common(lookup)
    lookup.set_defaults(handler=run_lookup)
    build = actions.add_parser("build", help="look up, copy from the shared registry, or build")
    _environment_flags(build)
    build.add_argument("--force-build", action="store_true", help="build even if found")
    build.add_argument(
        "--pip-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="an extra pip option, e.g. --pip-arg=--find-links=DIR (repeatable)",
    )
    build.add_argument("--no-progress", action="store_true", help="no upload progress bars")
    _common(build)
    build.set_defaults(handler=run_build)
    push = actions.add_parser("push", help="copy an image to another registry or repository")
    push.add_argument("source", metavar="SOURCE", help="HOST/REPO:TAG or HOST/REPO@DIGEST")
    push.add_argument("target", metavar="TARGET", help="HOST/REPO[:TAG]")
    push.add_argument("--no-progress", action="store_true", help="no upload progress bars")
    _common(push)
    push.set_defaults(handler=run_push)
    parser.set_defaults(handler=lambda args: _missing_action(parser))


def _missing_action(parser: argparse.ArgumentParser) -> int:
    raise UsageError("image: give an action: build, lookup or push")


def _transport(args: argparse.Namespace) -> Any:
    from deployer.images import Credentials, RegistryTransport

    credentials = Credentials(docker_config=args.docker_config, tenant=args.acr_tenant)
    return RegistryTransport(credentials, plain_http=args.plain_http)


@contextlib.contextmanager
def _progress(args: argparse.Namespace) -> Iterator[Any]:
    from deployer.images import NULL_PROGRESS, RichProgress

    if getattr(args, "no_progress", False) or args.output == "json":
        yield NULL_PROGRESS
        return
    with RichProgress() as progress:
        yield progress


@contextlib.contextmanager
def _failures(action: str) -> Iterator[None]:
    """Bad input stays exit 2 (raised on); registry and build failures are one line, exit 1."""
    from deployer.images import ImageConfigError, ImageError

    try:
        yield
    except ImageConfigError as exc:
        raise UsageError(f"image {action}: {exc}") from None
    except ImageError as exc:
        raise _Failed(f"image {action}: {exc}") from None


class _Failed(Exception):
    pass


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    if args.output == "json":
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(text)


def _run(action: str, body: Any, args: argparse.Namespace) -> int:
    try:
        with _failures(action):
            return int(body(args))
    except _Failed as exc:
        print(f"aksflight: {exc}", file=sys.stderr)
        return 1


def run_lookup(args: argparse.Namespace) -> int:
    return _run("lookup", _lookup, args)


def _lookup(args: argparse.Namespace) -> int:
    from deployer.images import lookup_environment

    with _transport(args) as transport:
        found = lookup_environment(
            args.environment, args.registry, args.shared_registry, transport=transport
        )
    data = {
        "hash": found.resolved.hash,
        "tag": found.resolved.tag,
        "found_in": found.where,
        "image": found.reference.pinned() if found.reference else None,
        "definition": found.resolved.definition,
    }
    if found.reference is None:
        _emit(args, data, f"not found: {found.resolved.tag}")
        return 1
    _emit(args, data, f"{found.reference.pinned()} ({found.where} registry)")
    return 0


def run_build(args: argparse.Namespace) -> int:
    return _run("build", _build, args)


def _stats(stats: Any) -> dict[str, int]:
    return {
        "uploaded_bytes": stats.uploaded_bytes,
        "uploaded_blobs": len(stats.uploaded),
        "mounted_blobs": len(stats.mounted),
        "present_blobs": len(stats.present),
    }


def _build(args: argparse.Namespace) -> int:
    from deployer.images import ensure_image

    with _transport(args) as transport, _progress(args) as progress:
        result = ensure_image(
            args.environment,
            args.registry,
            args.shared_registry,
            transport=transport,
            progress=progress,
            pip_args=args.pip_arg,
            force_build=args.force_build,
        )
    data = {
        "image": result.pinned,
        "source": result.source,
        "hash": result.resolved.hash,
        "tag": result.resolved.tag,
        **_stats(result.stats),
    }
    _emit(
        args,
        data,
        f"{result.pinned} ({result.source}, {result.stats.uploaded_bytes} bytes uploaded)",
    )
    return 0


def run_push(args: argparse.Namespace) -> int:
    return _run("push", _push, args)


def _push(args: argparse.Namespace) -> int:
    from deployer.images import ImageReference, copy_reference

    source = ImageReference.parse(args.source, "source")
    target_text = args.target
    if "@" in target_text:
        raise UsageError("image push: TARGET takes a tag, not a digest (the digest is kept)")
    last = target_text.rsplit("/", 1)[-1]
    if ":" not in last:
        target_text += f":{source.tag}" if source.tag else ""
        if not source.tag:
            raise UsageError("image push: give TARGET a tag (the source has only a digest)")
    target = ImageReference.parse(target_text, "target")
    with _transport(args) as transport, _progress(args) as progress:
        pushed, stats = copy_reference(source, target, transport=transport, progress=progress)
    _emit(
        args,
        {"image": pushed.pinned(), "tag": pushed.tag, **_stats(stats)},
        f"{pushed} ({stats.uploaded_bytes} bytes uploaded)",
    )
    return 0


def environment_image(args: argparse.Namespace) -> str:
    """`deploy --environment`: the environment's image (looked up, copied or built and
    pushed), pinned by digest; registry failures are one line and exit 1 (`ImageFailed`)."""
    from deployer.images import ensure_image

    if args.registry is None:
        raise UsageError("--environment: give --registry HOST/REPO for the environment image")
    try:
        with _failures("build"), _transport(args) as transport, _progress(args) as progress:
            result = ensure_image(
                args.environment,
                args.registry,
                args.shared_registry,
                transport=transport,
                progress=progress,
            )
    except _Failed as exc:
        raise ImageFailed(str(exc)) from None
    return str(result.pinned)


class ImageFailed(Exception):
    """The environment image could not be had (the registry or the build failed)."""

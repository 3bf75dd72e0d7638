"""ensure_image against real registries: build, rebuild, shared hits, the built image's
contents and config."""

from __future__ import annotations

import json

import httpx
import pytest

from deployer.images import (
    Credentials,
    ImageConfigError,
    ImageEnvironment,
    ImageNotFound,
    ImageReference,
    Registry,
    RegistryLocation,
    ensure_image,
)
from deployer.images.build import LABEL_DEFINITION, LABEL_HASH
from deployer.images.startup import ENTRYPOINT, SITE_PACKAGES
from tests.images.conftest import ALICE, Base
from tests.images.registries import (
    RegistryProcess,
    make_base_image,
    push_index,
    unpack_layers,
)

CHUNK = 64 * 1024


def environment(base: Base, *requirements: str, **fields: object) -> ImageEnvironment:
    return ImageEnvironment(
        base_image=ImageReference.parse(base.reference),
        pip_requirements=requirements,
        model_server=str(fields.pop("model_server", "bundled")),
        **fields,  # type: ignore[arg-type]
    )


def fetch(
    registry: RegistryProcess, repository: str, reference: str
) -> tuple[dict, list[bytes], dict]:
    """The manifest, its layers' bytes and the config, read with plain httpx."""
    accept = "application/vnd.oci.image.manifest.v1+json"
    with httpx.Client(base_url=registry.url("")) as client:
        manifest = client.get(f"/v2/{repository}/manifests/{reference}", headers={"Accept": accept})
        assert manifest.status_code == 200
        body = manifest.json()
        config = client.get(f"/v2/{repository}/blobs/{body['config']['digest']}").json()
        layers = [
            client.get(f"/v2/{repository}/blobs/{d['digest']}").content for d in body["layers"]
        ]
    return body, layers, config


def test_build_then_rebuild_uploads_nothing_and_keeps_the_digest(
    registry, base, pip_args, make_transport, tmp_path
):
    env = environment(base, "six==1.17.0", "idna")
    workspace = RegistryLocation(registry.host, "aksflight/environments")
    first = ensure_image(
        env, workspace, transport=make_transport(), pip_args=pip_args, chunk_size=CHUNK
    )
    assert first.source == "built"
    assert first.stats.uploaded_bytes > 0
    assert first.pinned.startswith(f"{registry.host}/aksflight/environments@sha256:")
    assert first.reference.tag == first.resolved.tag

    again = ensure_image(env, workspace, transport=make_transport(), pip_args=pip_args)
    assert again.source == "workspace"
    assert again.pinned == first.pinned
    assert again.stats.uploaded_bytes == 0 and not again.stats.uploaded

    rebuilt = ensure_image(
        env, workspace, transport=make_transport(), pip_args=pip_args, force_build=True
    )
    assert rebuilt.source == "built"
    assert rebuilt.pinned == first.pinned  # reproducible: same inputs, same digest
    assert rebuilt.stats.uploaded_bytes == 0
    assert rebuilt.stats.uploaded == [] and rebuilt.stats.manifests_put == 0


def test_built_image_unpacks_to_the_requirements_and_start_up_files(
    registry, base, pip_args, make_transport, tmp_path
):
    env = environment(base, "six==1.17.0", "idna")
    workspace = RegistryLocation(registry.host, "envs")
    result = ensure_image(env, workspace, transport=make_transport(), pip_args=pip_args)
    manifest, layers, config = fetch(registry, "envs", result.reference.digest)
    assert len(layers) == 3  # base + requirements + start-up files
    root = tmp_path / "rootfs"
    unpack_layers(layers, root)
    site = root / SITE_PACKAGES.lstrip("/")
    assert (root / "bin/hello").read_text().endswith("echo hello\n")  # from the base
    assert (site / "six.py").is_file()
    assert (site / "idna" / "__init__.py").is_file()
    assert sorted(p.name for p in site.glob("*.dist-info"))[0].startswith("idna-")
    assert not list(site.rglob("__pycache__"))
    entry = root / ENTRYPOINT.lstrip("/")
    assert entry.stat().st_mode & 0o111
    assert "azmlinfsrv --entry_script" in entry.read_text()
    runtime = config["config"]
    assert runtime["Entrypoint"] == [ENTRYPOINT]
    assert "Cmd" not in runtime  # the base's ["python3"] must not become the server's args
    assert runtime["WorkingDir"] == "/var/azureml-app"
    env_vars = dict(item.split("=", 1) for item in runtime["Env"])
    assert env_vars["AML_APP_ROOT"] == "/var/azureml-app"
    assert env_vars["AZUREML_MODEL_DIR"] == "/var/azureml-app/azureml-models"
    assert env_vars["AZUREML_ENTRY_SCRIPT"] == "score.py"
    assert env_vars["PYTHONPATH"] == SITE_PACKAGES
    assert env_vars["PATH"].startswith(f"{SITE_PACKAGES}/bin:/opt/aksflight/bin:/usr/local/bin")
    assert env_vars["PYTHON_VERSION"] == "3.11.9"  # kept from the base
    labels = runtime["Labels"]
    assert labels[LABEL_HASH] == result.resolved.hash
    assert json.loads(labels[LABEL_DEFINITION])["requirements"] == ["idna", "six==1.17.0"]
    assert labels["org.opencontainers.image.base.digest"] == base.digest
    assert labels["base.marker"] == "base"
    assert len(config["rootfs"]["diff_ids"]) == 3
    assert manifest["annotations"]["org.opencontainers.image.base.name"] == base.reference


def test_a_changed_requirement_changes_the_hash_and_the_image(
    registry, base, pip_args, make_transport
):
    workspace = RegistryLocation(registry.host, "envs")
    one = ensure_image(
        environment(base, "six==1.17.0"), workspace, transport=make_transport(), pip_args=pip_args
    )
    two = ensure_image(
        environment(base, "six==1.17.0", "idna"),
        workspace,
        transport=make_transport(),
        pip_args=pip_args,
    )
    assert one.resolved.hash != two.resolved.hash
    assert one.reference.digest != two.reference.digest
    assert two.source == "built"
    # the base layer and the start-up layer are the same blobs: not uploaded again
    manifest_one, _, _ = fetch(registry, "envs", one.reference.digest)
    manifest_two, _, _ = fetch(registry, "envs", two.reference.digest)
    base_layer, *_, startup = (d["digest"] for d in manifest_one["layers"])
    assert manifest_two["layers"][0]["digest"] == base_layer
    assert manifest_two["layers"][-1]["digest"] == startup
    assert {base_layer, startup} <= set(two.stats.present)
    assert manifest_two["layers"][1]["digest"] != manifest_one["layers"][1]["digest"]


def test_shared_registry_hit_on_another_registry_is_copied_not_rebuilt(
    registry, auth_registry, base, pip_args, make_transport, tmp_path
):
    env = environment(base, "six==1.17.0")
    shared = RegistryLocation(registry.host, "shared/environments")
    built = ensure_image(env, shared, transport=make_transport(), pip_args=pip_args)
    workspace = RegistryLocation(auth_registry.host, "ws/environments")
    creds = Credentials({auth_registry.host: ALICE}, use_docker_config=False)
    # no index and no wheels: a rebuild would fail, so success means it was copied
    copied = ensure_image(
        env,
        workspace,
        shared,
        transport=make_transport(credentials=creds),
        pip_args=["--no-index"],
        chunk_size=CHUNK,
    )
    assert copied.source == "shared"
    assert copied.reference.digest == built.reference.digest
    assert copied.reference.host == auth_registry.host
    assert copied.stats.mounted == []  # two registries: streamed, not mounted
    assert copied.stats.uploaded_bytes == sum(
        s for s in _blob_sizes(registry, "shared/environments", built.reference.digest)
    )
    third = ensure_image(
        env, workspace, shared, transport=make_transport(credentials=creds), pip_args=["--no-index"]
    )
    assert third.source == "workspace" and third.stats.uploaded_bytes == 0


def _blob_sizes(registry: RegistryProcess, repository: str, digest: str) -> list[int]:
    manifest, _, _ = fetch(registry, repository, digest)
    return [manifest["config"]["size"], *(layer["size"] for layer in manifest["layers"])]


def test_shared_hit_on_the_same_registry_is_mounted(registry, base, pip_args, make_transport):
    env = environment(base, "six==1.17.0")
    shared = RegistryLocation(registry.host, "shared/environments")
    built = ensure_image(env, shared, transport=make_transport(), pip_args=pip_args)
    workspace = RegistryLocation(registry.host, "team-a/environments")
    copied = ensure_image(
        env, workspace, shared, transport=make_transport(), pip_args=["--no-index"]
    )
    assert copied.source == "shared"
    assert copied.pinned == f"{registry.host}/team-a/environments@{built.reference.digest}"
    assert copied.stats.uploaded_bytes == 0
    assert len(copied.stats.mounted) == 4  # config, base layer, requirements, start-up


def test_base_layers_are_mounted_from_the_base_repository(registry, base, pip_args, make_transport):
    result = ensure_image(
        environment(base),
        RegistryLocation(registry.host, "envs"),
        transport=make_transport(),
        pip_args=pip_args,
    )
    assert result.stats.mounted == [json.loads(base.image.manifest)["layers"][0]["digest"]]


def test_missing_base_image_is_a_clear_error(registry, make_transport, pip_args):
    env = ImageEnvironment(
        ImageReference.parse(f"{registry.host}/base/nothing:1"), model_server="bundled"
    )
    with pytest.raises(ImageNotFound, match=r"base image .*/base/nothing:1 not found"):
        ensure_image(
            env,
            RegistryLocation(registry.host, "envs"),
            transport=make_transport(),
            pip_args=pip_args,
        )
    with httpx.Client() as client:  # nothing was written
        assert client.get(registry.url("/v2/_catalog")).json()["repositories"] == []


def test_a_multi_arch_base_is_resolved_to_the_environments_platform(
    registry, make_transport, pip_args
):
    images = {
        "linux/amd64": make_base_image("amd64", marker="x86"),
        "linux/arm64": make_base_image("arm64", marker="arm"),
    }
    with httpx.Client() as client:
        push_index(client, registry.url(""), "base/multi", "1", images)
    reference = ImageReference.parse(f"{registry.host}/base/multi:1")
    transport = make_transport()
    result = ensure_image(
        ImageEnvironment(reference, model_server="bundled", platform="linux/arm64"),
        RegistryLocation(registry.host, "envs"),
        transport=transport,
        pip_args=pip_args,
    )
    _, _, config = fetch(registry, "envs", result.reference.digest)
    assert config["architecture"] == "arm64"
    assert config["config"]["Labels"]["base.marker"] == "arm"
    with httpx.Client() as client:
        push_index(
            client, registry.url(""), "base/arm", "1", {"linux/arm64": images["linux/arm64"]}
        )
    arm_only = ImageEnvironment(
        ImageReference.parse(f"{registry.host}/base/arm:1"), model_server="bundled"
    )
    with pytest.raises(
        ImageConfigError, match=r"has no linux/amd64 image \(has \['linux/arm64'\]\)"
    ):
        ensure_image(arm_only, RegistryLocation(registry.host, "envs"), transport=transport)


def test_python_version_is_required_when_the_base_does_not_say(registry, make_transport):
    with httpx.Client() as client:
        from tests.images.registries import push_base

        push_base(client, registry.url(""), "base/nopy", "1", make_base_image(python_version=None))
    env = ImageEnvironment(
        ImageReference.parse(f"{registry.host}/base/nopy:1"), model_server="bundled"
    )
    with pytest.raises(ImageConfigError, match="python: give the Python version"):
        ensure_image(env, RegistryLocation(registry.host, "envs"), transport=make_transport())
    explicit = ensure_image(
        ImageEnvironment(env.base_image, model_server="bundled", python="3.12"),
        RegistryLocation(registry.host, "envs"),
        transport=make_transport(),
    )
    assert explicit.resolved.python == "3.12"


def test_registry_client_sees_the_tag(registry, base, pip_args, make_transport):
    result = ensure_image(
        environment(base, "six==1.17.0"),
        RegistryLocation(registry.host, "envs"),
        transport=make_transport(),
        pip_args=pip_args,
    )
    reg = Registry(make_transport())
    assert reg.head_manifest(result.reference.location.image(tag=result.resolved.tag)) == (
        result.reference.digest
    )


def test_large_distributions_get_their_own_layer_shared_between_environments(
    registry, base, pip_args, make_transport, monkeypatch
):
    import deployer.images.build as build_module

    monkeypatch.setattr(build_module, "LARGE_DISTRIBUTION", 100 * 1024)  # idna is larger
    workspace = RegistryLocation(registry.host, "envs")
    one = ensure_image(
        environment(base, "six==1.17.0", "idna"),
        workspace,
        transport=make_transport(),
        pip_args=pip_args,
    )
    manifest, layers, config = fetch(registry, "envs", one.reference.digest)
    assert len(layers) == 4  # base, idna, the rest (six), start-up
    with_idna = {d["digest"] for d in manifest["layers"]}
    names = [h["created_by"] for h in config["history"][1:]]
    assert names == [
        "aksflight image build: the requirements (pip --target), packages-idna.tar.gz",
        "aksflight image build: the requirements (pip --target), packages.tar.gz",
        "aksflight image build: the model server start-up files",
    ]
    two = ensure_image(
        environment(base, "idna"), workspace, transport=make_transport(), pip_args=pip_args
    )
    manifest_two, _, _ = fetch(registry, "envs", two.reference.digest)
    shared_layers = with_idna & {d["digest"] for d in manifest_two["layers"]}
    assert len(shared_layers) == 3  # base, idna's layer, start-up: stored once
    assert set(two.stats.present) >= shared_layers - set(two.stats.mounted)

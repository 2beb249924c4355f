"""The anchor action's way of attesting, for the benchmark: a process of its own that signs.

As pypa/gh-action-pypi-publish (v1.14) does it before `twine upload --attestations`, from
shared/FACTS.md section 7: the OIDC token for Sigstore through `sigstore.oidc.detect_credential`,
one signer (one key, one certificate) for the run, `Attestation.sign` per distribution, read
from its file, and `<dist>.publish.attestation` written with `model_dump_json()`; no retries.
The trust configuration is the stand-in's, where the anchor refreshes the public one (TUF).

    python -m bench.anchor_attest PACKAGES_DIR TRUST_CONFIG
"""

from __future__ import annotations

import sys
from pathlib import Path

from pypi_attestations import Attestation, Distribution
from sigstore.models import ClientTrustConfig
from sigstore.oidc import IdentityToken, detect_credential
from sigstore.sign import SigningContext


def main(packages_dir: Path, trust_config: Path) -> None:
    token = detect_credential()
    if token is None:
        raise SystemExit("no OIDC token for Sigstore")
    identity = IdentityToken(token)
    config = ClientTrustConfig.from_json(trust_config.read_text())
    dists = sorted(p for p in packages_dir.iterdir() if p.name.endswith((".whl", ".tar.gz")))
    with SigningContext.from_trust_config(config).signer(identity, cache=True) as signer:
        for path in dists:
            attestation_path = Path(f"{path}.publish.attestation")
            if attestation_path.exists():
                raise SystemExit(f"{path.name} already has publish attestations")
            attestation = Attestation.sign(signer, Distribution.from_file(path))
            attestation_path.write_text(attestation.model_dump_json())
            print(f"Signed {path.name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

"""`yihao ca add|list|remove`: the trust store from the command line, with its per-CA profile."""
from __future__ import annotations

import json
from pathlib import Path

from tests.live import yihao
from tests.pki import root


def _env(tmp_path: Path) -> dict[str, str]:
    return {"YIHAO_DATABASE_URL": f"sqlite:///{tmp_path}/ca.db", "YIHAO_VAR_DIR": str(tmp_path),
            "YIHAO_LOG_LEVEL": "WARNING"}


def test_a_ca_is_added_with_its_profile_listed_and_removed(tmp_path: Path) -> None:
    env = _env(tmp_path)
    ca = tmp_path / "sm2-root.pem"
    ca.write_bytes(root("国密根CA", "sm2", tmp_path).pem)
    added = yihao(env, "ca", "add", str(ca), "--name", "cfca-sm2", "--algorithm", "sm2", "--identity-field",
                  "ext:1.2.156.10260.4.4", "--crl-max-stale", "3600", "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["algorithm"] == "sm2"
    listed = json.loads(yihao(env, "ca", "list", "--json").stdout)
    assert [(c["name"], c["subject"]) for c in listed] == [("cfca-sm2", "CN=国密根CA")]
    assert listed[0]["profile"]["identity_fields"] == ["ext:1.2.156.10260.4.4"]
    assert listed[0]["profile"]["crl_max_stale"] == 3600 and listed[0]["profile"]["algorithms"] == ["sm2"]
    again = yihao(env, "ca", "add", str(ca), "--name", "other-name")
    assert again.returncode == 1 and again.stderr.strip() == "yihao: already trusted as 'cfca-sm2'"
    assert yihao(env, "ca", "remove", "cfca-sm2").returncode == 0
    assert json.loads(yihao(env, "ca", "list", "--json").stdout) == []
    assert yihao(env, "ca", "remove", "cfca-sm2").returncode == 1


def test_a_certificate_that_is_not_a_ca_is_refused(tmp_path: Path) -> None:
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(root("Root", "rsa", tmp_path).issue("Not a CA").pem)
    result = yihao(_env(tmp_path), "ca", "add", str(leaf), "--name", "x")
    assert result.returncode == 1
    assert result.stderr.strip() == "yihao: not a CA certificate (no basicConstraints)"
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"hello")
    assert yihao(_env(tmp_path), "ca", "add", str(junk), "--name", "x").stderr.strip() == \
        "yihao: not a PEM or DER X.509 certificate"

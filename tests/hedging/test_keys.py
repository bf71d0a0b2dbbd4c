"""The encrypted keyfile."""

import json

import pytest

from adapters.hedging import keys
from adapters.hedging.exchanges import Credentials


def test_round_trip_list_remove(tmp_path):
    path = tmp_path / "keys.json"
    keys.add(path, "pw", "maker00", "binance", Credentials("AKEY1234", "very-secret"))
    keys.add(path, "pw", "maker01", "okx", Credentials("OKEY", "s2", "phrase"))
    raw = path.read_text()
    assert "very-secret" not in raw and "AKEY1234" not in raw
    assert (path.stat().st_mode & 0o777) == 0o600
    creds = keys.credentials(path, "pw")
    assert creds["maker00"]["binance"].secret == "very-secret" and creds["maker01"]["okx"].password == "phrase"
    assert keys.listing(path, "pw")[0] == {"maker": "maker00", "exchange": "binance", "api_key": "AKEY…"}
    assert "very-secret" not in repr(creds)
    assert keys.remove(path, "pw", "maker00", "binance") and not keys.remove(path, "pw", "maker00", "binance")
    assert list(keys.credentials(path, "pw")) == ["maker01"]


def test_wrong_passphrase_and_tampering_refused(tmp_path):
    path = tmp_path / "keys.json"
    keys.add(path, "pw", "maker00", "binance", Credentials("A", "S"))
    with pytest.raises(keys.KeyfileError, match="wrong passphrase"):
        keys.load(path, "not-pw")
    doc = json.loads(path.read_text())
    doc["ciphertext"] = doc["ciphertext"][:-4] + ("AAAA" if not doc["ciphertext"].endswith("AAAA") else "BBBB")
    path.write_text(json.dumps(doc))
    with pytest.raises(keys.KeyfileError):
        keys.load(path, "pw")

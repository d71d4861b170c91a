"""Kubernetes' `$(VAR)` expansion in commands and env values."""

from __future__ import annotations

from gossamer.runtime.expand import expand, expand_env

POD = {"POD_IP": "10.231.0.7", "POD_NAME": "reviews-0"}


def test_known_names_expand_anywhere_in_the_text() -> None:
    assert expand("--bind=$(POD_IP):9080", POD) == "--bind=10.231.0.7:9080"
    assert expand("$(POD_NAME)/$(POD_IP)", POD) == "reviews-0/10.231.0.7"


def test_unknown_names_stay_as_written() -> None:
    assert expand("$(NOPE) and $(POD_IP)", POD) == "$(NOPE) and 10.231.0.7"


def test_double_dollar_is_a_literal_dollar_so_the_reference_stays_literal() -> None:
    assert expand("$$(POD_IP)", POD) == "$(POD_IP)"
    assert expand("cost: $$5", POD) == "cost: $5"
    assert expand("$$$(POD_IP)", POD) == "$10.231.0.7"


def test_shell_style_references_are_not_kubernetes_references() -> None:
    assert expand("$POD_IP ${POD_IP} $", POD) == "$POD_IP ${POD_IP} $"


def test_env_entries_refer_to_the_downward_vars_and_to_earlier_entries_only() -> None:
    env = {
        "ADDR": "$(POD_IP):9080",
        "URL": "http://$(ADDR)/",
        "EARLY": "$(LATE)",
        "LATE": "x",
    }
    result = expand_env(POD, env)
    assert result["ADDR"] == "10.231.0.7:9080"
    assert result["URL"] == "http://10.231.0.7:9080/"
    assert result["EARLY"] == "$(LATE)"
    assert result["POD_NAME"] == "reviews-0"

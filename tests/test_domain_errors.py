"""Every refusal the domain gives has one shape: a DomainError with a stable code."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import domain
from domain.errors import DomainError
from domain.outbox import Skip
from domain.profile import ProfileError, normalise_interests


def domain_exceptions() -> list[type[BaseException]]:
    """Return every exception class the domain package defines."""
    found = []
    for module_info in pkgutil.iter_modules(domain.__path__, "domain."):
        module = importlib.import_module(module_info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found.append(value)
    return found


@pytest.mark.parametrize("error", domain_exceptions(), ids=lambda error: error.__qualname__)
def test_every_domain_exception_is_a_domain_error(error):
    assert issubclass(error, DomainError)


def test_a_profile_error_has_a_stable_code_and_a_message_for_people():
    with pytest.raises(DomainError) as raised:
        normalise_interests([f"tag {number}" for number in range(100)])
    assert isinstance(raised.value, ProfileError)
    assert raised.value.code == "too_many_interests"
    assert raised.value.message
    assert str(raised.value) == raised.value.message


def test_a_skipped_message_says_why_by_its_code():
    skip = Skip("suppressed")
    assert isinstance(skip, DomainError)
    assert (skip.code, str(skip)) == ("suppressed", "suppressed")

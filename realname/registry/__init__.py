"""Registries that confirm who someone is: the population registry (二要素: name + ID number) and
the legal-entity registry (credit code → name, legal representative, status).

Each is a Protocol with a local implementation (tables filled by ``yihao registry import``; the
embedded mode and the tests use it for real) and, for people, an HTTP connector to a remote
verification service. A registry that cannot answer says ``unavailable``, never ``mismatch``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from sqlalchemy import Engine

from idp.settings import Settings
from realname.pii import CreditCode, IdNumber, PiiVault

Outcome = Literal["match", "mismatch", "not_found", "unavailable"]


@dataclass(frozen=True)
class Verdict:
    """The registry's answer; ``detail`` says why it was unavailable (timeout, http_503, circuit_open…)."""

    outcome: Outcome
    source: str
    detail: str | None = None


@dataclass(frozen=True)
class EntityVerdict:
    """A lookup's answer; the registered facts are filled on ``match`` (and on ``mismatch`` of a name)."""

    outcome: Outcome
    source: str
    name: str | None = None
    legal_representative: str | None = None
    status: str | None = None
    detail: str | None = None


class PopulationRegistry(Protocol):
    def verify(self, name: str, id_number: IdNumber) -> Verdict:
        """match when the number is registered under this name; mismatch under another name."""
        ...


class LegalEntityRegistry(Protocol):
    def lookup(self, credit_code: CreditCode, name: str | None = None) -> EntityVerdict:
        """The registered facts; with ``name``, mismatch when the registered name differs."""
        ...


def open_population_registry(settings: Settings, engine: Engine, vault: PiiVault) -> PopulationRegistry:
    """The registry ``YIHAO_POPULATION_REGISTRY`` chooses."""
    if settings.population_registry == "http":
        from realname.registry.http import CircuitBreaker, HttpPopulationRegistry

        breaker = CircuitBreaker(settings.registry_breaker_failures, settings.registry_breaker_cooldown)
        return HttpPopulationRegistry(settings.population_registry_url, timeout=settings.population_registry_timeout_ms / 1000,
                                      retries=settings.population_registry_retries, breaker=breaker)
    from realname.registry.local import LocalPopulationRegistry

    return LocalPopulationRegistry(engine, vault)


def open_legal_entity_registry(engine: Engine, vault: PiiVault) -> LegalEntityRegistry:
    """The legal-entity registry: the city's own tables (``yihao registry import entities.csv``)."""
    from realname.registry.local import LocalEntityRegistry

    return LocalEntityRegistry(engine, vault)

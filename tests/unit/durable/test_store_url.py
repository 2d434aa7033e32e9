"""Store URLs (api.md): memory://, sqlite:/// (relative), sqlite://// (absolute), env fallback."""

from __future__ import annotations

from pathlib import Path

import pytest

from actorkit_durable._store import (
    MemoryStore,
    NewProcess,
    SQLiteStore,
    StoreClosed,
    StoreError,
    open_store,
    store_from_url,
)


async def test_memory_url_opens_a_fresh_memory_store() -> None:
    async with open_store("memory://") as store:
        assert isinstance(store, MemoryStore)
        await store.create(NewProcess("p", "process", "/p", {}), now=0.0)
    async with open_store("memory://") as store:
        assert await store.get("p") is None


async def test_three_slashes_is_a_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError, match="directory 'data' does not exist"):
        async with open_store("sqlite:///data/app.db"):
            pass
    (tmp_path / "data").mkdir()
    async with open_store("sqlite:///data/app.db") as store:
        assert isinstance(store, SQLiteStore)
        assert store.path == Path("data/app.db")
        assert store.synchronous == "FULL"
    assert (tmp_path / "data" / "app.db").exists()


async def test_four_slashes_is_an_absolute_path(tmp_path: Path) -> None:
    target = tmp_path / "abs.db"
    async with open_store(f"sqlite:///{target}") as store:
        assert isinstance(store, SQLiteStore)
        assert store.path == target
        assert store.path.is_absolute()
    assert target.exists()


def test_sqlite_options() -> None:
    store = store_from_url("sqlite:///x.db?synchronous=normal&busy_timeout=2.5")
    assert isinstance(store, SQLiteStore)
    assert store.synchronous == "NORMAL"
    assert store._busy_timeout == 2.5


@pytest.mark.parametrize(
    "url",
    [
        "",
        "app.db",
        "mysql://localhost/db",
        "sqlite://",
        "sqlite:///",
        "sqlite://host/app.db",
        "sqlite:///dir/",
        "sqlite:///:memory:",
        "sqlite:///x.db?synchronous=OFF",
        "sqlite:///x.db?busy_timeout=soon",
        "sqlite:///x.db?cache=shared",
        "memory://somewhere",
    ],
)
def test_bad_urls_name_the_url_and_the_accepted_forms(url: str) -> None:
    with pytest.raises(ValueError, match="bad store URL") as caught:
        store_from_url(url)
    assert repr(url) in str(caught.value)


def test_bad_scheme_lists_every_accepted_form() -> None:
    with pytest.raises(ValueError, match="redis") as caught:
        store_from_url("redis://localhost")
    message = str(caught.value)
    for form in ("memory://", "sqlite:///", "sqlite:////", "postgresql://"):
        assert form in message


@pytest.mark.parametrize("url", ["postgresql://user@localhost/db", "postgres://localhost/db"])
def test_postgresql_is_not_available_yet(url: str) -> None:
    with pytest.raises(NotImplementedError, match="PostgreSQL store is not available yet"):
        store_from_url(url)


def test_a_url_must_be_a_string() -> None:
    with pytest.raises(TypeError, match="bytes"):
        store_from_url(b"memory://")  # type: ignore[arg-type]


async def test_environment_variable_is_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTORKIT_STORE", f"sqlite:///{tmp_path}/env.db")
    async with open_store() as store:
        assert isinstance(store, SQLiteStore)
        assert store.path == tmp_path / "env.db"
    monkeypatch.setenv("ACTORKIT_STORE", "")
    with pytest.raises(ValueError, match="ACTORKIT_STORE"):
        async with open_store():
            pass
    monkeypatch.delenv("ACTORKIT_STORE")
    with pytest.raises(ValueError, match="ACTORKIT_STORE"):
        async with open_store(None):
            pass


async def test_a_store_object_is_opened_for_the_block(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "obj.db")
    async with open_store(store) as opened:
        assert opened is store
        async with open_store(store):  # re-entrant: the inner block does not close it
            pass
        await store.get("p")
    with pytest.raises(StoreClosed):
        await store.get("p")

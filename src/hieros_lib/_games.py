"""The 26 games of Atari 100k, their ALE ROM ids, and the usual spellings of their names.

A root module (like :mod:`hieros_lib.errors`) so that both :mod:`hieros_lib.envs` (which starts the games)
and :mod:`hieros_lib.metrics` (which normalises their scores) share one table without depending on each
other. Public names are re-exported by those packages.
"""

from __future__ import annotations

import re

from hieros_lib.errors import HierosError

__all__ = ["ATARI100K_GAMES", "atari_game", "atari_rom_id"]

# Canonical name -> ALE ROM id (the v5 environment id is ALE/<Canonical-as-in-ALE>-v5, see _ALE_NAMES).
_ROMS: dict[str, str] = {
    "Alien": "alien",
    "Amidar": "amidar",
    "Assault": "assault",
    "Asterix": "asterix",
    "BankHeist": "bank_heist",
    "BattleZone": "battle_zone",
    "Boxing": "boxing",
    "Breakout": "breakout",
    "ChopperCommand": "chopper_command",
    "CrazyClimber": "crazy_climber",
    "DemonAttack": "demon_attack",
    "Freeway": "freeway",
    "Frostbite": "frostbite",
    "Gopher": "gopher",
    "Hero": "hero",
    "Jamesbond": "jamesbond",
    "Kangaroo": "kangaroo",
    "Krull": "krull",
    "KungFuMaster": "kung_fu_master",
    "MsPacman": "ms_pacman",
    "Pong": "pong",
    "PrivateEye": "private_eye",
    "Qbert": "qbert",
    "RoadRunner": "road_runner",
    "Seaquest": "seaquest",
    "UpNDown": "up_n_down",
}

ATARI100K_GAMES: tuple[str, ...] = tuple(_ROMS)
"""The 26 games of the Atari 100k benchmark (Kaiser et al. 2020), in the canonical spelling used here."""

# Spellings seen in papers and code bases that do not reduce to a canonical name by case and punctuation.
_ALIASES = {"chopcommand": "ChopperCommand", "mspackman": "MsPacman", "upanddown": "UpNDown"}
_BY_KEY = {re.sub(r"[^a-z0-9]", "", name.lower()): name for name in ATARI100K_GAMES} | _ALIASES


def atari_game(name: str) -> str:
    """The canonical name of an Atari 100k game from any usual spelling.

    Case, spaces, underscores, dots and dashes are ignored, so ``"ms_pacman"``, ``"Ms. Pacman"``,
    ``"MsPacman"`` and ``"battle zone"`` all work; an ``"ALE/"`` prefix and a ``"-v5"`` (or any
    ``-vN``) suffix are dropped; a few spellings from papers (``"Chop.Command"``, ``"Ms.Packman"``) are
    known.

    Args:
        name: A game name.

    Returns:
        The canonical name, one of :data:`ATARI100K_GAMES`.

    Raises:
        HierosError: If the name is not one of the 26 games; the message lists them.

    Examples:
        >>> atari_game("ms_pacman"), atari_game("ALE/BattleZone-v5"), atari_game("James Bond")
        ('MsPacman', 'BattleZone', 'Jamesbond')
    """
    if not isinstance(name, str):
        raise HierosError(f"game: expected a game name (str), got {type(name).__name__}")
    stripped = re.sub(r"-v\d+$", "", name.strip().removeprefix("ALE/"))
    key = re.sub(r"[^a-z0-9]", "", stripped.lower())
    if key not in _BY_KEY:
        games = list(ATARI100K_GAMES)
        raise HierosError(f"game: expected one of the 26 Atari 100k games {games}, got {name!r}")
    return _BY_KEY[key]


def atari_rom_id(name: str) -> str:
    """The ALE ROM id (snake_case, e.g. ``"ms_pacman"``) of an Atari 100k game, from any usual spelling.

    Examples:
        >>> atari_rom_id("UpNDown")
        'up_n_down'
    """
    return _ROMS[atari_game(name)]

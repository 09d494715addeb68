"""Every command of ``tracker`` answers ``--help`` (argparse formats help lazily, so a stray
``%`` in a help text breaks only the help of its command)."""
import argparse

import pytest

from tracker.cli.main import _parser, main


def _commands(parser: argparse.ArgumentParser, path=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name)
                yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(_parser()))


def test_there_are_commands_to_check():
    assert ("send",) in COMMANDS and ("webhooks", "add") in COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_is_printed(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0 and "usage: tracker" in capsys.readouterr().out

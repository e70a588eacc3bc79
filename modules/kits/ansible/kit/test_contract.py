"""Unit tests of the kit's state edits (contract.py), outside any container:
`python3 -m unittest discover -s modules/kits/ansible/kit` (tests/all.sh runs it)."""

import os
import tempfile
import unittest

import yaml

from contract import Failure, dump, replace_section


class ReplaceSection(unittest.TestCase):
    STATE = "# written by hand\nazi:\n  status: applied   # kept\n  nodes:\n  - {privateIP: 10.0.0.1}\nbmk:\n  status: applied\n"

    def test_a_new_section_is_appended_and_the_others_keep_their_bytes(self):
        text = replace_section(self.STATE, "pg", {"status": "applied"})
        self.assertEqual(text, self.STATE + "pg:\n  status: applied\n")

    def test_a_section_is_replaced_in_place(self):
        text = replace_section(self.STATE, "azi", {"status": "applied", "size": 2})
        self.assertEqual(text, "# written by hand\nazi:\n  status: applied\n  size: 2\nbmk:\n  status: applied\n")

    def test_a_section_is_removed_and_the_others_stay(self):
        text = replace_section(self.STATE, "bmk", None)
        self.assertEqual(text, "# written by hand\nazi:\n  status: applied   # kept\n  nodes:\n  - {privateIP: 10.0.0.1}\n")

    def test_an_empty_state_becomes_the_section(self):
        for empty in ("", "{}\n", "# nothing yet\n"):
            self.assertEqual(replace_section(empty, "pg", {"a": 1}), "pg:\n  a: 1\n")

    def test_a_flow_state_is_refused(self):
        with self.assertRaises(Failure):
            replace_section("{azi: {status: applied}}\n", "pg", {"a": 1})

    def test_the_dump_reads_back_without_folding_long_values(self):
        key = "ssh-ed25519 " + "A" * 300
        text = dump({"pg": {"hostKey": key, "version": "15.14", "port": 5432}})
        self.assertEqual(len(text.splitlines()), 4)
        self.assertEqual(yaml.safe_load(text), {"pg": {"hostKey": key, "version": "15.14", "port": 5432}})


class WriteAtomically(unittest.TestCase):
    def test_the_file_is_replaced_whole(self):
        from contract import write_atomically

        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "state.yml")
            write_atomically(path, "a: 1\n")
            write_atomically(path, "a: 2\n")
            self.assertEqual(open(path, encoding="utf-8").read(), "a: 2\n")
            self.assertEqual(os.listdir(folder), ["state.yml"])


if __name__ == "__main__":
    unittest.main()

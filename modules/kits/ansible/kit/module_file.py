"""The module file (`module.yml`) an Ansible module brings besides its playbook and roles: its
metadata, where its hosts come from, its settings and their defaults, its secrets, and the
roles it uses. Read and checked here, so that a typo fails every method with a good error.
"""

import os
import re

from contract import Failure, read_yaml

MODULE_DIR = os.environ.get("E_ANSIBLE_MODULE_DIR", "/module")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_KEYS = {
    "metadata", "hosts", "section", "settings", "host-settings", "secrets", "ssh-key",
    "playbook", "roles",
}
# Names the kit gives the playbook itself, or that Ansible reserves.
_RESERVED = {"hosts", "e_action", "e_method", "e_module", "e_node", "e_check"}


class ModuleFile:
    """The checked content of `module.yml`."""

    def __init__(self, data, path):
        def bad(what):
            return Failure(f"`{path}`: {what}", "see \"Writing an Ansible module\" in docs/modules.md")

        if not isinstance(data, dict):
            raise bad("not a mapping")
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise bad(f"unknown key `{unknown[0]}`; the keys are {', '.join(sorted(_KEYS))}")
        self.metadata = data.get("metadata") or {}
        if not isinstance(self.metadata, dict) or "labels" not in self.metadata:
            raise bad("`metadata` must be a mapping with `labels` (and `requires`, `influences`)")
        hosts = data.get("hosts") or {}
        self.hosts_from = hosts.get("from")
        if self.hosts_from not in ("config", "requirement"):
            raise bad("`hosts.from` must be `config` (the user lists them) or `requirement` (nodes of a required module)")
        self.hosts_requirement = int(hosts.get("requirement", 0))
        self.hosts_key = str(hosts.get("key", "nodes"))
        self.hosts_env = hosts.get("env")
        self.section_hosts = str((data.get("section") or {}).get("hosts", "hosts"))
        self.settings = data.get("settings") or {}
        self.host_settings = data.get("host-settings") or {}
        if not isinstance(self.settings, dict) or not isinstance(self.host_settings, dict):
            raise bad("`settings` and `host-settings` must be mappings")
        for name in list(self.settings) + list(self.host_settings):
            if not _NAME.match(str(name)) or name in _RESERVED:
                raise bad(f"`{name}` cannot name a setting: use letters, digits and `_`, not {', '.join(sorted(_RESERVED))}")
        for name, spec in self.host_settings.items():
            if not isinstance(spec, dict) or "default" not in spec:
                raise bad(f"host setting `{name}` needs a `default` (and optionally `var`, the node variable it comes from)")
        self.secrets = data.get("secrets") or {}
        for variable, secret in self.secrets.items():
            if not _NAME.match(str(variable)) or not _SECRET.match(str(secret)):
                raise bad(f"`secrets` maps playbook variables to secret names, not `{variable}: {secret}`")
        self.ssh_key = str(data.get("ssh-key", "ssh-key"))
        self.playbook = str(data.get("playbook", "playbook.yml"))
        self.roles = data.get("roles") or {}


def load():
    """Reads the module file of the image."""
    path = os.path.join(MODULE_DIR, "module.yml")
    data = read_yaml(path, "the module file")
    if data is None:
        raise Failure(
            f"the image has no module file `{path}`",
            "an Ansible module's image copies its folder (module.yml, playbook.yml) to /module",
        )
    return ModuleFile(data, path)

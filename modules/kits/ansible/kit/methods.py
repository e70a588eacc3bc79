"""The methods of the module contract for a module that brings a playbook, its roles and a
module file: `init` writes the config from the state (or from the hosts the user lists),
`plan` and `audit` run the playbook with `--check --diff`, `apply` runs it and writes the
module's section, `destroy` runs it with `e_action=absent` and removes the section.

The section holds what the next methods and other modules need: `status`, the settings, and
one entry per host (how to reach it, its recorded host key, its host settings, and what the
playbook recorded for it). Audit and destroy work from the section, i.e. from what was
applied, not from a config edited since.
"""

import difflib
import os

import hosts as hostlib
import playbook
from contract import Failure, bound_module, dump, load_state, read_yaml, write_atomically, write_section

SCRATCH = "/tmp/e-ansible-ssh"


def _section_config(module, section):
    """The hosts and settings an applied section says were applied."""
    keep = set(hostlib.BASE) | set(module.host_settings) | {"vars"}
    hosts = [{k: v for k, v in host.items() if k in keep} for host in section.get(module.section_hosts) or []]
    return hosts, dict(section.get("settings") or {})


def _config(env, module):
    """The hosts and settings of the config, checked."""
    where = f"the config `{env.config_file}`"
    data = read_yaml(env.config_file, "the config")
    if data is None:
        raise Failure(f"no config `{env.config_file}`", f"run `e init {env.module}` first")
    if not isinstance(data, dict) or list(data) != [env.module] or not isinstance(data[env.module], dict):
        raise Failure(f"{where} must be a mapping with `{env.module}` as its only key", f"run `e init {env.module}` again")
    body = data[env.module]
    unknown = sorted(set(body) - {"hosts", "settings"})
    if unknown:
        raise Failure(f"{where}: unknown key `{unknown[0]}`; the keys are `hosts` and `settings`")
    settings = body.get("settings") or {}
    if not isinstance(settings, dict):
        raise Failure(f"{where}: `settings` must be a mapping")
    unknown = sorted(set(settings) - set(module.settings))
    if unknown:
        known = ", ".join(f"`{name}`" for name in module.settings) or "none"
        raise Failure(f"{where}: unknown setting `{unknown[0]}`", f"the settings are {known}")
    merged = {name: settings.get(name, default) for name, default in module.settings.items()}
    extra = list(module.host_settings) + ["vars"]
    hosts = hostlib.check(body.get("hosts"), where, extra, need_key=module.hosts_from == "requirement")
    for host in hosts:
        for name, spec in module.host_settings.items():
            host.setdefault(name, spec["default"])
    return hosts, merged


def _with_keys(env, module, hosts, state):
    """Hosts of a user's list get the key recorded in the section, else the one they show now."""
    recorded = {}
    for host in (state.get(env.module) or {}).get(module.section_hosts) or []:
        if isinstance(host, dict) and host.get("hostKey"):
            recorded[(host.get("name"), host.get("address"), host.get("sshPort"))] = host["hostKey"]
    for host in hosts:
        if not host.get("hostKey"):
            known = recorded.get((host["name"], host["address"], host["sshPort"]))
            host["hostKey"] = known or hostlib.scan_key(host, 10)
    return hosts


def _variables(env, module, settings, action):
    variables = dict(settings)
    for variable, secret in module.secrets.items():
        path = os.path.join(hostlib.SECRETS_DIR, secret)
        try:
            with open(path, encoding="utf-8") as file:
                variables[variable] = file.read().rstrip("\n")
        except OSError:
            raise Failure(
                f"the secret `{secret}` is not given to `{env.method or 'this method'}`",
                f"list `{secret}` in the command's `secrets:` in the repository and give its value in the secrets file (`e --secrets FILE`)",
            ) from None
    variables.update({"e_action": action, "e_method": env.method, "e_module": env.module})
    return variables


def _run(env, module, hosts, settings, action, check):
    connection = hostlib.Connection(SCRATCH, module.ssh_key, hosts)
    inventory = hostlib.inventory(hosts, module.host_settings)
    variables = _variables(env, module, settings, action)
    return playbook.run(env, module, inventory, variables, connection, check)


def _section(module, hosts, settings, result):
    entries = []
    for host in hosts:
        entry = {key: host[key] for key in hostlib.BASE if key in host}
        for name in module.host_settings:
            entry[name] = host[name]
        if host.get("vars"):
            entry["vars"] = host["vars"]
        for key, value in result.host_record(host["name"]).items():
            entry.setdefault(key, value)
        entries.append(entry)
    section = {"status": "applied"}
    if settings:
        section["settings"] = settings
    for key, value in (result.record.get("section") or {}).items():
        if key not in ("status", "settings", module.section_hosts):
            section[key] = value
    section[module.section_hosts] = entries
    return section


def _difference(current, desired, module_name):
    before = dump({module_name: current}).splitlines() if current else []
    after = dump({module_name: desired}).splitlines()
    return [line for line in difflib.unified_diff(before, after, "state", "after apply", lineterm="", n=1)]


def metadata(env, module, args):
    _no_arguments(env, args)
    print(dump(module.metadata), end="")
    return 0


def init(env, module, args):
    state, _ = load_state(env)
    existing = read_yaml(env.config_file, "the config")
    old = existing.get(env.module) if isinstance(existing, dict) and isinstance(existing.get(env.module), dict) else {}
    old_settings = old.get("settings") if isinstance(old.get("settings"), dict) else {}
    settings = {name: old_settings.get(name, default) for name, default in module.settings.items()}
    if module.hosts_from == "config":
        hosts, source = _given_hosts(env, module, args, old)
    else:
        _no_arguments(env, args)
        hosts, source = _required_hosts(env, module, state, old)
    body = {"hosts": hosts}
    if settings:
        body["settings"] = settings
    header = f"# The config of `{env.module}`: the hosts it runs its playbook on ({source}) and its settings.\n"
    write_atomically(env.config_file, header + dump({env.module: body}))
    names = ", ".join(f"{h['name']} ({h['sshUser']}@{h['address']}:{h['sshPort']})" for h in hosts)
    print(f"Wrote `{env.config_file}`: {len(hosts)} host(s): {names}.")
    return 0


def _given_hosts(env, module, args, old):
    specs = []
    rest = list(args)
    while rest:
        flag = rest.pop(0)
        if flag == "--host" and rest:
            specs.append(rest.pop(0))
        elif flag.startswith("--host="):
            specs.append(flag.split("=", 1)[1])
        else:
            raise Failure(f"unexpected argument `{flag}` for `init`", "`init` takes `--host NAME=USER@ADDRESS:PORT[,VAR=VALUE...]`, once per host")
    if specs:
        return [hostlib.parse_spec(spec) for spec in specs], "given to init"
    if old.get("hosts"):
        where = f"the config `{env.config_file}`"
        return hostlib.check(old["hosts"], where, ["vars"], need_key=False), "kept from the config"
    if module.hosts_env and os.environ.get(module.hosts_env, "").strip():
        return [hostlib.parse_spec(spec) for spec in os.environ[module.hosts_env].split()], f"from `{module.hosts_env}`"
    raise Failure(
        "no hosts: `init` needs the hosts to manage",
        f"run `e init {env.module} -- --host NAME=USER@ADDRESS:PORT` (once per host), "
        f"or set `{module.hosts_env or 'hosts'}` in the command's `envs:` in the repository",
    )


def _required_hosts(env, module, state, old):
    provider = bound_module(env, module.hosts_requirement)
    if provider is None:
        raise Failure(
            f"no installed module provides the nodes `{env.module}` needs (strong requirement {module.hosts_requirement})",
            f"`e search --for {env.module}` lists the modules that would satisfy it",
        )
    section = state.get(provider)
    nodes = section.get(module.hosts_key) if isinstance(section, dict) else None
    where = f"the `{module.hosts_key}` of `{provider}` in the state"
    if not isinstance(nodes, list) or not nodes:
        raise Failure(f"{where}: none recorded", f"apply `{provider}` first")
    previous = {h.get("name"): h for h in old.get("hosts") or [] if isinstance(h, dict)}
    hosts = []
    for node in nodes:
        if not isinstance(node, dict):
            raise Failure(f"{where}: a node is not a mapping")
        host = {key: node[key] for key in hostlib.BASE if key in node}
        variables = node.get("vars") if isinstance(node.get("vars"), dict) else {}
        before = previous.get(host.get("name"), {})
        for name, spec in module.host_settings.items():
            host[name] = before.get(name, variables.get(spec.get("var", name), spec["default"]))
            if isinstance(spec["default"], int) and isinstance(host[name], str) and host[name].isdigit():
                host[name] = int(host[name])
        hosts.append(host)
    hostlib.check(hosts, where, list(module.host_settings), need_key=True)
    return hosts, f"the {module.hosts_key} of `{provider}`"


def plan(env, module, args):
    _no_arguments(env, args)
    state, _ = load_state(env)
    hosts, settings = _config(env, module)
    if module.hosts_from == "config":
        hosts = _with_keys(env, module, hosts, state)
    result = _run(env, module, hosts, settings, "present", check=True)
    current = state.get(env.module)
    desired = _section(module, hosts, settings, result)
    return _verdict(env, result, current, desired, "Plan", 2)


def audit(env, module, args):
    _no_arguments(env, args)
    state, _ = load_state(env)
    current = state.get(env.module)
    if not isinstance(current, dict):
        print(f"`{env.module}` is not applied: nothing to audit.")
        return 0
    hosts, settings = _section_config(module, current)
    hostlib.check(hosts, f"the `{env.module}` section of the state", list(module.host_settings) + ["vars"], need_key=True)
    result = _run(env, module, hosts, settings, "present", check=True)
    desired = _section(module, hosts, settings, result)
    return _verdict(env, result, current, desired, "Drift", 2)


def _verdict(env, result, current, desired, word, code):
    lines = []
    for host, task in result.changes:
        lines.append(f"  ~ {host}: {task}")
    difference = _difference(current, desired, env.module) if current != desired else []
    if not lines and not difference:
        print(f"{word}: no changes." if word == "Plan" else "No drift: the hosts and the section are as applied.")
        return 0
    if word == "Plan":
        parts = []
        if lines:
            parts.append(f"{len(lines)} task(s) would change the hosts")
        if difference:
            parts.append(f"the `{env.module}` section would change")
        print(f"Plan: {' and '.join(parts)}:")
    else:
        print(f"Drift: the hosts or the `{env.module}` section changed since the apply:")
    for line in lines + difference:
        print(line)
    return code


def apply(env, module, args):
    _no_arguments(env, args)
    state, _ = load_state(env)
    hosts, settings = _config(env, module)
    if module.hosts_from == "config":
        hosts = _with_keys(env, module, hosts, state)
    result = _run(env, module, hosts, settings, "present", check=False)
    section = _section(module, hosts, settings, result)
    write_section(env, section)
    print(f"Applied `{env.module}` on {len(hosts)} host(s); {len(result.changes)} task(s) changed something.")
    return 0


def destroy(env, module, args):
    _no_arguments(env, args)
    state, _ = load_state(env)
    current = state.get(env.module)
    if isinstance(current, dict):
        hosts, settings = _section_config(module, current)
    elif read_yaml(env.config_file, "the config") is not None:
        hosts, settings = _config(env, module)
        hosts = _with_keys(env, module, hosts, state)
    else:
        print(f"`{env.module}` is not applied: nothing to destroy.")
        return 0
    if hosts:
        _run(env, module, hosts, settings, "absent", check=False)
    write_section(env, None)
    print(f"Destroyed `{env.module}` on {len(hosts)} host(s) and removed its section.")
    return 0


def _no_arguments(env, args):
    if args:
        raise Failure(f"unexpected argument `{args[0]}` for `{env.method or 'this method'}`", "this method takes no arguments")


METHODS = {
    "metadata": metadata,
    "init": init,
    "plan": plan,
    "apply": apply,
    "audit": audit,
    "destroy": destroy,
}

# module.sh: the shell side of e's module contract, shared by the example modules written for
# busybox sh and awk (k8s, rook, nfs, pg). Each module's script sets `default_module` and `here`
# and sources this file; modules/build-contexts.sh copies it into each module's folder, so that
# every folder stays a build context of its own, and the scripts fall back to ../lib/module.sh
# when they run from the source tree (as the tests do).
#
# What it owns: the E_* variables, errors, the record in the module's mount, a reader for the
# YAML the modules write (flattened into `path<TAB>value` lines), a reader for the requirements
# file e writes (JSON, flattened the same way), and the edits of state.yml that keep every byte
# of the sections a module does not change. What it must not do: print anything on stdout except
# through the functions a method calls for that, or change a file that a method did not ask for.
#
# busybox sh, like bash, does not apply `set -e` inside `$(...)`: each command substitution that
# can fail is followed by `|| exit 1`.

module=${E_MODULE:-$default_module}
shared=${E_SHARED:-/shared}
state_file=${E_STATE_FILE:-$shared/state.yml}
config_file=${E_CONFIG_FILE:-$shared/$module-config.yml}
# <NAME>_RECORD_DIR (K8S_RECORD_DIR, ...) moves the record, to run the module outside a container.
record_variable=$(printf '%s_RECORD_DIR' "$default_module" | tr 'a-z-' 'A-Z_')
eval "record_dir=\${$record_variable:-/var/lib/$default_module}"
record_file=$record_dir/applied.yml
methods="metadata init plan apply audit destroy"

fail() {
    echo "error: $1" >&2
    if [ $# -gt 1 ]; then echo "hint: $2" >&2; fi
    exit 1
}

note() {
    echo "note: $1" >&2
}

no_arguments() {
    if [ $# -gt 0 ]; then fail "unexpected argument \`$1\` for \`$method\`" "\`$method\` takes no arguments"; fi
}

# Shared awk functions: indentation, comments, quotes, keys.
AWK_LIB='
function indent(line) { match(line, /^ */); return RLENGTH }
function uncomment(text) { sub(/[ \t]+#.*$/, "", text); sub(/^[ \t]+/, "", text); sub(/[ \t]+$/, "", text); return text }
function unquote(text) {
    text = uncomment(text)
    if (text ~ /^".*"$/ || text ~ /^\047.*\047$/) text = substr(text, 2, length(text) - 2)
    return text
}
function blank(line) { return line ~ /^[ \t]*(#.*)?\r?$/ }
function top_level(line) { return line !~ /^[ \t#-]/ && !blank(line) && line !~ /^(---|\.\.\.)/ }
function key_of(line) { sub(/:([ \t].*)?$/, "", line); return line }
function after_colon(line) { sub(/^[^:]*:/, "", line); return uncomment(line) }
function is_item(text) { return text == "-" || text ~ /^-[ \t]/ }
function is_key(text) { return !is_item(text) && text !~ /^[\[{#]/ && text ~ /:([ \t]|$)/ }
'

# Flattens the YAML file $1 (`-` for stdin) into one `path<TAB>value` line per scalar, such as
# `azi.nodes[0].privateIP<TAB>10.0.0.0`; an empty list or mapping is the value `[]` or `{}`, a
# null the empty value. It reads the block style the modules write, with one-line flow
# collections (`[a, b]`, `{a: 1}`) anywhere; for anything else (block scalars, anchors, flow
# collections over several lines) it prints `!error<TAB>what`.
yaml_flatten() {
    awk "$AWK_LIB"'
    function join(path, key) { return path == "" ? key : path "." key }
    function emit(path, value) { gsub(/\t/, " ", value); print path "\t" value }
    function err(what) { if (!failed) print "!error\t" what " at line " NR; failed = 1 }
    function push(at, kind, path) { depth++; at_indent[depth] = at; at_kind[depth] = kind; at_path[depth] = path; at_count[depth] = 0 }

    function flow(path, text) {
        ftext = text; fpos = 1; flen = length(text); fbad = 0
        fvalue(path); fskip()
        if (fpos <= flen || fbad) err("cannot read the flow value `" text "`")
    }
    function fskip() { while (fpos <= flen && substr(ftext, fpos, 1) ~ /[ \t]/) fpos++ }
    function fnext_is(c) { fskip(); return substr(ftext, fpos, 1) == c }
    function fvalue(path,    c, i, key) {
        fskip(); c = substr(ftext, fpos, 1)
        if (c == "[") {
            fpos++
            if (fnext_is("]")) { fpos++; emit(path, "[]"); return }
            for (i = 0; !fbad; i++) {
                fvalue(path "[" i "]")
                if (fnext_is("]")) { fpos++; return }
                if (!fnext_is(",")) { fbad = 1; return }
                fpos++
                if (fnext_is("]")) { fpos++; return }
            }
            return
        }
        if (c == "{") {
            fpos++
            if (fnext_is("}")) { fpos++; emit(path, "{}"); return }
            while (!fbad) {
                key = fscalar(1)
                if (!fnext_is(":")) { fbad = 1; return }
                fpos++
                if (fnext_is(",") || fnext_is("}")) emit(join(path, key), "")
                else fvalue(join(path, key))
                if (fnext_is("}")) { fpos++; return }
                if (!fnext_is(",")) { fbad = 1; return }
                fpos++
                if (fnext_is("}")) { fpos++; return }
            }
            return
        }
        emit(path, fscalar(0))
    }
    # A plain or quoted scalar; a key (is_key) ends at a colon followed by a blank.
    function fscalar(is_key,    c, q, start, out) {
        fskip(); c = substr(ftext, fpos, 1)
        if (c == "\"" || c == "\047") {
            q = c; fpos++; start = fpos
            while (fpos <= flen && substr(ftext, fpos, 1) != q) fpos++
            if (fpos > flen) fbad = 1
            out = substr(ftext, start, fpos - start); fpos++
            return out
        }
        start = fpos
        while (fpos <= flen) {
            c = substr(ftext, fpos, 1)
            if (c == "," || c == "]" || c == "}") break
            if (is_key && c == ":" && (fpos == flen || substr(ftext, fpos + 1, 1) ~ /[ \t]/)) break
            fpos++
        }
        out = substr(ftext, start, fpos - start); sub(/[ \t]+$/, "", out)
        return out
    }

    # A value after `key:` or `- `: empty opens a nested block (pending until the next line).
    function value_at(path, value, at, kind) {
        value = uncomment(value)
        if (value == "") { pending = 1; pending_path = path; pending_indent = at; pending_kind = kind; return }
        if (value ~ /^[\[{]/) { flow(path, value); return }
        if (value ~ /^[|>]/) { err("block scalars are not supported"); return }
        if (value ~ /^[&*!]/) { err("anchors, aliases and tags are not supported"); return }
        emit(path, unquote(value))
    }
    function line_at(at, text,    path, offset) {
        while (!failed) {
            if (at_indent[depth] != at) { err("unexpected indentation"); return }
            if (at_kind[depth] == "seq") {
                if (!is_item(text)) { err("expected a list item"); return }
                path = at_path[depth] "[" at_count[depth]++ "]"
                if (text == "-") { value_at(path, "", at, "item"); return }
                match(text, /^-[ \t]+/); offset = RLENGTH
                text = substr(text, offset + 1); at += offset
                if (is_item(text)) { push(at, "seq", path); continue }
                if (is_key(text)) { push(at, "map", path); continue }
                value_at(path, text, at, "item")
                return
            }
            if (!is_key(text)) { err("expected `key: value`"); return }
            value_at(join(at_path[depth], unquote(key_of(text))), after_colon(text), at, "key")
            return
        }
    }

    BEGIN { push(0, "map", "") }
    failed { next }
    { sub(/\r$/, "") }
    /^(---|\.\.\.)([ \t]|$)/ || blank($0) { next }
    {
        at = indent($0); text = uncomment(substr($0, at + 1))
        if (at == 0 && depth == 1 && !pending) {
            if (text ~ /^(null|~)$/) next
            if (text ~ /^[\[{]/) { flow("", text); next }
        }
        if (pending) {
            pending = 0
            if (is_item(text) && (at > pending_indent || (at == pending_indent && pending_kind == "key"))) push(at, "seq", pending_path)
            else if (at > pending_indent) push(at, "map", pending_path)
            else emit(pending_path, "")
        }
        while (depth > 1 && (at_indent[depth] > at || (at_indent[depth] == at && at_kind[depth] == "seq" && !is_item(text)))) depth--
        line_at(at, text)
    }
    END { if (pending && !failed) emit(pending_path, "") }' "$1"
}

# Flattens the JSON file $1 like yaml_flatten (paths such as `strong[0].satisfied_by[0].module`).
json_flatten() {
    awk '
    function emit(path, value) { gsub(/[\t\n]/, " ", value); print path "\t" value }
    function skip() { while (pos <= len && index(" \t\r\n", substr(text, pos, 1))) pos++ }
    function next_is(c) { skip(); return substr(text, pos, 1) == c }
    function string(    out, c) {
        pos++; out = ""
        while (pos <= len) {
            c = substr(text, pos, 1)
            if (c == "\"") { pos++; return out }
            if (c == "\\") {
                c = substr(text, pos + 1, 1); pos += 2
                if (c == "n") c = "\n"; else if (c == "t") c = "\t"; else if (c == "u") c = "\\u"
                out = out c; continue
            }
            out = out c; pos++
        }
        bad = 1; return out
    }
    function value(path,    c, i, key, start) {
        skip(); c = substr(text, pos, 1)
        if (c == "{") {
            pos++
            if (next_is("}")) { pos++; emit(path, "{}"); return }
            while (!bad) {
                if (!next_is("\"")) { bad = 1; return }
                key = string()
                if (!next_is(":")) { bad = 1; return }
                pos++
                value(path == "" ? key : path "." key)
                if (next_is("}")) { pos++; return }
                if (!next_is(",")) { bad = 1; return }
                pos++
            }
            return
        }
        if (c == "[") {
            pos++
            if (next_is("]")) { pos++; emit(path, "[]"); return }
            for (i = 0; !bad; i++) {
                value(path "[" i "]")
                if (next_is("]")) { pos++; return }
                if (!next_is(",")) { bad = 1; return }
                pos++
            }
            return
        }
        if (c == "\"") { emit(path, string()); return }
        start = pos
        while (pos <= len && !index(",]} \t\r\n", substr(text, pos, 1))) pos++
        if (pos == start) { bad = 1; return }
        emit(path, substr(text, start, pos - start))
    }
    { text = text $0 "\n" }
    END {
        len = length(text); pos = 1
        value(""); skip()
        if (bad || pos <= len) print "!error\tnot valid JSON near character " pos
    }' "$1"
}

# Flattens the YAML file $1 into the variable named $2, failing on what it cannot read. A missing
# file is empty.
load_flat() {
    if [ -f "$1" ]; then
        loaded=$(yaml_flatten "$1") || fail "failed to read \`$1\`"
    else
        loaded=
    fi
    problem=$(printf '%s\n' "$loaded" | awk -F'\t' '$1 == "!error" { print $2; exit }')
    if [ -n "$problem" ]; then fail "cannot read \`$1\`: $problem" "the modules read block-style YAML with one-line flow lists and mappings"; fi
    eval "$2=\$loaded"
}

# The lines of the flattened text $1 under the top-level key $2, with `$2.` taken off the paths.
flat_section() {
    printf '%s\n' "$1" | awk -F'\t' -v section="$2" '
    $1 == section { sub(/^[^\t]*/, ""); print; next }
    index($1, section ".") == 1 || index($1, section "[") == 1 { print substr($0, length(section) + (substr($1, length(section) + 1, 1) == "." ? 2 : 1)) }'
}

# Whether the flattened text $1 has a top-level key $2.
flat_has() {
    printf '%s\n' "$1" | awk -F'\t' -v section="$2" '
    $1 == section || index($1, section ".") == 1 || index($1, section "[") == 1 { found = 1; exit }
    END { exit !found }'
}

# The value at path $2 of the flattened text $1 (empty if there is none).
flat_get() {
    printf '%s\n' "$1" | awk -F'\t' -v path="$2" '$1 == path { sub(/^[^\t]*\t/, ""); print; exit }'
}

# The differences between the flattened texts $1 (before) and $2 (after), one line each:
# `~<TAB>path<TAB>before<TAB>after`, `-<TAB>path<TAB>before<TAB>` or `+<TAB>path<TAB><TAB>after`,
# in the order of $1 and then the paths only $2 has.
flat_diff() {
    BEFORE=$1 AFTER=$2 awk 'BEGIN {
        n = split(ENVIRON["AFTER"], lines, "\n")
        for (i = 1; i <= n; i++) if (lines[i] != "") {
            tab = index(lines[i], "\t"); path = substr(lines[i], 1, tab - 1)
            after[path] = substr(lines[i], tab + 1); order[++count] = path
        }
        n = split(ENVIRON["BEFORE"], lines, "\n")
        for (i = 1; i <= n; i++) if (lines[i] != "") {
            tab = index(lines[i], "\t"); path = substr(lines[i], 1, tab - 1); value = substr(lines[i], tab + 1)
            before[path] = value
            if (!(path in after)) print "-\t" path "\t" value "\t"
            else if (after[path] != value) print "~\t" path "\t" value "\t" after[path]
        }
        for (i = 1; i <= count; i++) if (!(order[i] in before)) print "+\t" order[i] "\t\t" after[order[i]]
    }'
}

# The differences $1 (from flat_diff) as plan lines: `+ path: value`, `- path: value`,
# `~ path: before -> after`.
plan_lines() {
    printf '%s\n' "$1" | awk -F'\t' '
    function shown(value) { return value == "" ? "null" : value }
    $1 == "+" { print "+ " $2 ": " shown($4) }
    $1 == "-" { print "- " $2 ": " shown($3) }
    $1 == "~" { print "~ " $2 ": " shown($3) " -> " shown($4) }'
}

# The differences $1 (from flat_diff, record before, state after) as audit lines.
audit_lines() {
    printf '%s\n' "$1" | awk -F'\t' '
    function shown(value) { return value == "" ? "null" : value }
    $1 == "+" { print $2 ": (none) -> " shown($4) " (added by hand)" }
    $1 == "-" { print $2 ": " shown($3) " -> (none) (removed by hand)" }
    $1 == "~" { print $2 ": " shown($3) " -> " shown($4) " (changed by hand)" }'
}

# How many lines of $1 start with $2.
count_lines() {
    printf '%s\n' "$1" | awk -v prefix="$2" 'index($0, prefix) == 1 { n++ } END { print n + 0 }'
}

# The first line of stdin that is not an address (an IP address or a host name).
first_invalid_address() {
    awk '!/^[A-Za-z0-9:][A-Za-z0-9.:_-]*$/ { print; exit }'
}

# Replaces file $1 with stdin: a temporary file in the same directory, flushed, then renamed.
write_atomically() {
    cat > "$1.tmp-$module" || fail "failed to write \`$1.tmp-$module\`"
    commit "$1.tmp-$module" "$1"
}

# Flushes the temporary file $1 to disk and renames it to $2.
commit() {
    sync "$1" 2>/dev/null || true
    mv -f "$1" "$2" || fail "failed to replace \`$2\`"
}

# Prints file $3 with the top-level block $1 replaced by the text $2 (appended if there is no
# such block, dropped if $2 is empty), every other line as it was. Blank lines and comments at
# the end of the old block stay, since they introduce the next section. Exits with 3 if the top
# level is not in block style.
replace_block() {
    BLOCK=$2 awk -v section="$1" "$AWK_LIB"'
    BEGIN { text = ENVIRON["BLOCK"]; if (text != "") text = text "\n" }
    {
        raw = $0; line = $0; sub(/\r$/, "", line)
        if (top_level(line)) {
            if (line ~ /^\{\}[ \t]*$/ || line ~ /^(null|~)[ \t]*$/) next
            if (line ~ /^[{\[]/) { failed = 1; exit 3 }
            if (inside) { printf "%s", held; held = "" }
            inside = (key_of(line) == section)
            if (inside) { if (!done) printf "%s", text; done = 1; next }
        }
        if (inside) {
            if (blank(line) && line !~ /^[ \t]/) held = held raw "\n"
            else held = ""
            next
        }
        print raw
    }
    END {
        if (failed) exit 3
        if (inside) printf "%s", held
        if (!done) printf "%s", text
    }' "$3"
}

# Prints file $3 with the `usedBy` of some items of the `nodes` list of top-level section $1
# set: $2 holds `INDEX USER` lines (INDEX from 0). Only those values change, every other byte
# stays; an item without `usedBy` gets one. Exits with 4 if the list is not a block list of
# mappings that it can edit.
mark_nodes() {
    MARKS=$2 awk -v section="$1" "$AWK_LIB"'
    BEGIN {
        n = split(ENVIRON["MARKS"], lines, "\n")
        for (i = 1; i <= n; i++) if (split(lines[i], f, " ") == 2) mark[f[1]] = f[2]
        item = -1
    }
    function set_used(line, user,    head, rest) {
        if (!match(line, /(^|[ \t{,])usedBy:([ \t]|$)/)) return ""
        head = substr(line, 1, RSTART + RLENGTH - 1); rest = substr(line, RSTART + RLENGTH)
        sub(/[ \t]*$/, " ", head); sub(/^[ \t]*/, "", rest)
        match(rest, /^(\047[^\047]*\047|"[^"]*"|[^ \t,}#]*)/)
        return head user substr(rest, RLENGTH + 1)
    }
    function flush(    count, i, done, first, last, key_at, changed) {
        if (buffered == 0) return
        if ((item "") in mark) {
            for (i = 1; i <= buffered && !done; i++) {
                changed = set_used(buf[i], mark[item])
                if (changed != "") { buf[i] = changed; done = 1 }
            }
            if (!done) {
                first = buf[1]
                if (buffered == 1 && match(first, /[ \t]*}[ \t]*(#.*)?$/)) {
                    buf[1] = substr(first, 1, RSTART - 1) ", usedBy: " mark[item] substr(first, RSTART)
                } else if (first ~ /^ *-[ \t]+[^ \t{\[#]/) {
                    match(first, /^ *-[ \t]+/); key_at = RLENGTH
                    last = 1
                    for (i = 1; i <= buffered; i++) if (!blank(buf[i])) last = i
                    for (i = buffered; i > last; i--) buf[i + 1] = buf[i]
                    buf[last + 1] = sprintf("%" key_at "s", "") "usedBy: " mark[item]
                    buffered++
                } else { failed = 1; exit 4 }
            }
        }
        for (i = 1; i <= buffered; i++) print buf[i]
        buffered = 0
    }
    {
        line = $0; sub(/\r$/, "", line)
        if (top_level(line)) {
            flush(); list = 0
            inside = (key_of(line) == section); key_indent = -1
            if (inside && after_colon(line) != "" && length(ENVIRON["MARKS"])) { failed = 1; exit 4 }
            print; next
        }
        if (!inside) { print; next }
        if (blank(line)) { if (buffered) buf[++buffered] = $0; else print; next }
        at = indent(line); text = substr(line, at + 1)
        if (list) {
            if (list_indent < 0 && is_item(text) && at >= key_indent) list_indent = at
            if (at == list_indent && is_item(text)) { flush(); item++; buf[++buffered] = $0; next }
            if (list_indent >= 0 && at > list_indent && buffered) { buf[++buffered] = $0; next }
            flush(); list = 0
        }
        if (key_indent < 0) key_indent = at
        if (at == key_indent && is_key(text) && key_of(text) == "nodes") {
            if (after_colon(text) == "") { list = 1; list_indent = -1 }
            else if (length(ENVIRON["MARKS"])) { failed = 1; exit 4 }
        }
        print
    }
    END { if (failed) exit 4; flush() }' "$3"
}

# Reads the requirements file that e writes before every method ($E_REQUIREMENTS_FILE, JSON) and
# sets `requirement_selector` and `requirement_module` for requirement $2 (from 0) of kind $1
# (`strong` or `weak`): the selector as e prints it, and the best installed module that satisfies
# it (empty if none). Returns 1, setting `requirements_missing` to why, when there is no file (an
# e older than the requirements file).
read_requirement() {
    requirement_selector= requirement_module=
    requirements=${E_REQUIREMENTS_FILE:-}
    if [ -z "$requirements" ]; then
        requirements_missing="E_REQUIREMENTS_FILE is not set (an older e?)"
        return 1
    fi
    if [ ! -f "$requirements" ]; then
        requirements_missing="no requirements file at \`$requirements\`"
        return 1
    fi
    parsed=$(json_flatten "$requirements") || fail "failed to read \`$requirements\`"
    problem=$(flat_get "$parsed" "!error")
    if [ -n "$problem" ]; then fail "invalid requirements file \`$requirements\`: $problem"; fi
    requirement_selector=$(flat_get "$parsed" "$1[$2].selector")
    requirement_module=$(flat_get "$parsed" "$1[$2].satisfied_by[0].module")
    return 0
}

# Finds the module that satisfies strong requirement $1 (from 0) and that the flattened `state`
# has a section of, and sets `provider`. $2 says what is required (`a Kubernetes cluster`), $3 is
# the selector to show when there is no requirements file: then the script's `guess_provider`
# (which prints a section name, or nothing) is asked instead, and a note says so. Returns 1, with
# `problem` and `hint` set, when there is no such module.
locate_provider() {
    provider=
    if read_requirement strong "$1"; then
        if [ -z "$requirement_module" ]; then
            problem="\`$module\` needs $2 ($requirement_selector), and no installed module provides one"
            hint="find one with \`e search '$requirement_selector'\` and install it first"
            return 1
        fi
        if ! flat_has "$state" "$requirement_module"; then
            problem="\`$requirement_module\` provides $2 for \`$module\`, but the state has no \`$requirement_module\` section"
            hint="apply \`$requirement_module\` first"
            return 1
        fi
        provider=$requirement_module
        return 0
    fi
    guessed=$(guess_provider) || exit 1
    if [ -z "$guessed" ]; then
        problem="\`$module\` needs $2 ($3), and the state has none"
        hint="find one with \`e search '$3'\` and install it first"
        return 1
    fi
    provider=$guessed
    note "$requirements_missing: taking \`$provider\` as $2, guessed from the state"
}

# locate_provider, failing when there is no provider.
find_provider() {
    locate_provider "$@" || fail "$problem" "$hint"
}

# Sets `state` (flattened), `provider` (the module that satisfies strong requirement 0, found by
# locate_provider with the script's `requirement_text` and `requirement_guess`) and `provided`,
# the value of key $1 of the provider's section (such as `apiServer` or `storageClass`). With
# `lenient` set, returns 1 with `problem` set instead of failing.
load_provider() {
    load_flat "$state_file" state
    if ! locate_provider 0 "$requirement_text" "$requirement_guess"; then
        if [ -n "${lenient:-}" ]; then return 1; fi
        fail "$problem" "$hint"
    fi
    provided=$(flat_get "$state" "$provider.$1")
    if [ -z "$provided" ]; then
        problem="\`$provider\` has no \`$1\` in the state"
        if [ -n "${lenient:-}" ]; then return 1; fi
        fail "$problem" "apply \`$provider\` first"
    fi
}

# The first top-level section of the flattened state, other than this module's, that has the
# key $1 (a path relative to the section, such as `apiServer` or `nodes[0]`).
first_section_with() {
    printf '%s\n' "$state" | awk -F'\t' -v self="$module" -v key="$1" '
    { section = $1; sub(/[.[].*$/, "", section) }
    section != self && ($1 == section "." key || index($1, section "." key ".") == 1 || index($1, section "." key "[") == 1) { print section; exit }'
}

# Sets `section` to this module's section of the config, flattened; fails when there is no
# config or no such section.
load_config_section() {
    if [ ! -f "$config_file" ]; then fail "failed to read \`$config_file\`: no such file" "run \`init\` first to write it"; fi
    load_flat "$config_file" config
    if ! flat_has "$config" "$module"; then fail "invalid config \`$config_file\`: no \`$module\` section" "run \`init\` to write it again"; fi
    section=$(flat_section "$config" "$module")
}

# Fails when the flattened config `section` has a key other than the keys $1 (separated by
# blanks), or is not a mapping; $2 is the hint, which names the keys.
only_config_keys() {
    unknown=$(printf '%s\n' "$section" | awk -F'\t' -v keys="$1" '
        BEGIN { n = split(keys, list, " "); for (i = 1; i <= n; i++) known[list[i]] = 1 }
        NF && !($1 in known) { key = $1; sub(/[.[].*$/, "", key); print (key == "" ? "(none: the section must be a mapping)" : key); exit }')
    if [ -n "$unknown" ]; then fail "invalid config \`$config_file\`: unknown key \`$unknown\`" "$2"; fi
}

# The section of this module in the record of its mount, flattened, into `recorded`; empty if it
# never applied.
load_record() {
    load_flat "$record_file" record_flat
    recorded=$(flat_section "$record_flat" "$module")
}

# Writes the record of what apply applied ($1, the section text) next to the record, to be put
# in place by commit_record after the state: a missing mount fails before the state changes.
prepare_record() {
    printf '%s\n' "$1" 2>/dev/null > "$record_file.tmp" ||
        fail "failed to write \`$record_file.tmp\`" "\`$module\` keeps its records in \`$record_dir\`: declare it in the module's \`mounts\` in repository.yaml"
}

# Puts the record that prepare_record wrote in place, once the state is written.
commit_record() {
    commit "$record_file.tmp" "$record_file"
}

# Sets `new_state` to the state with this module's block replaced by the text $1 (dropped if
# empty) and, when $3 holds `INDEX USER` lines, the `usedBy` of those nodes of section $2 set;
# then checks that it reads back as exactly that: the state before, this module's section as
# $1, and the marks. Fails if it cannot edit the state so.
edit_state() {
    if [ -f "$state_file" ]; then
        new_state=$(replace_block "$module" "$1" "$state_file" && echo .) ||
            fail "cannot edit \`$state_file\`: its top level is not in block style" "write it as \`module:\` lines, each followed by its indented section"
    elif [ -n "$1" ]; then
        new_state=$(printf '%s\n.' "$1")
    else
        new_state=.
    fi
    new_state=${new_state%.}
    if [ -n "$3" ]; then
        new_state=$(printf '%s' "$new_state" | mark_nodes "$2" "$3" - && echo .) ||
            fail "cannot mark the nodes of \`$2\` in \`$state_file\`" "write \`$2.nodes\` as a block list of mappings (\`- privateIP: ...\`)"
        new_state=${new_state%.}
    fi
    # What the result must read back as, compared in sorted order.
    wanted=$(
        printf '%s\n' "$state" | MARKS=$3 awk -F'\t' -v self="$module" -v infra="$2" '
        BEGIN { n = split(ENVIRON["MARKS"], lines, "\n"); for (i = 1; i <= n; i++) if (split(lines[i], f, " ") == 2) mark[infra ".nodes[" f[1] "].usedBy"] = f[2] }
        NF { section = $1; sub(/[.[].*$/, "", section); if (section == self) next }
        $1 in mark { print $1 "\t" mark[$1]; done[$1] = 1; next }
        NF { print }
        END { for (path in mark) if (!(path in done)) print path "\t" mark[path] }'
        if [ -n "$1" ]; then printf '%s\n' "$1" | yaml_flatten -; fi
    ) || exit 1
    got=$(printf '%s' "$new_state" | yaml_flatten -) || exit 1
    if [ "$(printf '%s\n' "$wanted" | awk NF | sort)" != "$(printf '%s\n' "$got" | awk NF | sort)" ]; then
        fail "cannot edit \`$state_file\` safely: the result would not read back as intended" "write the state in block style, as the modules do"
    fi
}

# Replaces the state with `new_state` (from edit_state).
write_state() {
    printf '%s' "$new_state" > "$state_file.tmp-$module" || fail "failed to write \`$state_file.tmp-$module\`"
    commit "$state_file.tmp-$module" "$state_file"
}

# Other sections of the flattened state that hold the value $1 (a cluster, a storage class), to
# warn that destroying this module leaves them without it.
users_of() {
    printf '%s\n' "$state" | awk -F'\t' -v self="$module" -v value="$1" '
    $2 == value { section = $1; sub(/[.[].*$/, "", section); if (section != self && !(section in seen)) { seen[section] = 1; list = list (list == "" ? "" : ", ") "`" section "`" } }
    END { print list }'
}

# Sets `changes` (the plan's lines) from the section text `desired` and this module's section of
# the flattened `state`.
compare_with_state() {
    desired_flat=$(printf '%s\n' "$desired" | yaml_flatten -) || exit 1
    differences=$(flat_diff "$(flat_section "$state" "$module")" "$(flat_section "$desired_flat" "$module")")
    changes=$(plan_lines "$differences")
}

# The counts of `changes`, for the summary line of plan and apply: $1, $2 and $3 name adding,
# changing and removing.
change_counts() {
    echo "$(count_lines "$changes" '+ ') $1, $(count_lines "$changes" '~ ') $2, $(count_lines "$changes" '- ') $3"
}

# plan, apply, audit and destroy of a module that writes only its own section. The script
# defines `make_plan` (sets `state`, `desired` and `changes`) and `audit_more` (prints drift
# lines beyond the differences from the record, such as a provider that is gone).
plan_section() {
    make_plan
    if [ -z "$changes" ]; then
        echo "No changes: the \`$module\` section of the state matches its config."
        return 0
    fi
    printf '%s\n' "$changes"
    echo "Plan: $(change_counts "to add" "to change" "to remove")."
    exit 2
}

apply_section() {
    make_plan
    edit_state "$desired" "" ""
    # The record is written first and put in place last, so that a missing mount fails before
    # the state changes.
    prepare_record "$desired"
    write_state
    commit_record
    if [ -n "$changes" ]; then printf '%s\n' "$changes"; fi
    echo "Applied: $(change_counts added changed removed)."
}

audit_section() {
    if [ ! -f "$record_file" ]; then
        echo "Nothing to audit: \`$module\` has not applied anything yet."
        return 0
    fi
    load_record
    load_flat "$state_file" state
    if ! flat_has "$state" "$module"; then
        echo "The \`$module\` section was removed from the state by hand."
        exit 2
    fi
    current=$(flat_section "$state" "$module")
    drift=$(audit_lines "$(flat_diff "$recorded" "$current")")
    more=$(audit_more) || exit 1
    drift=$(printf '%s\n%s\n' "$drift" "$more" | awk 'NF')
    if [ -z "$drift" ]; then
        echo "No drift: the \`$module\` section matches what it applied."
        return 0
    fi
    printf '%s\n' "$drift"
    echo "Audit: $(printf '%s\n' "$drift" | wc -l) hand changes to the \`$module\` section."
    exit 2
}

# A drift line when the value of key $1 of this module's section of the state (in `current`) is
# no longer what its provider offers as key $2 (see load_provider); $3 and $4 say how the
# provider offers it (`is not served by`, `it serves`).
audit_provided() {
    named=$(flat_get "$current" "$1")
    lenient=1
    if ! load_provider "$2"; then
        echo "$1: cannot check $named: $problem"
    elif [ "$named" != "$provided" ]; then
        echo "$1: $named $3 \`$provider\` ($4 $provided)"
    fi
}

# Removes this module's section and its record. $1 is a key of the section whose value other
# sections may still hold (a storage class), and $2 says what it is: a warning names them.
destroy_section() {
    load_flat "$state_file" state
    if ! flat_has "$state" "$module"; then
        rm -f "$record_file"
        echo "Nothing to destroy: the state has no \`$module\` section."
        return 0
    fi
    if [ -n "${1:-}" ]; then
        value=$(flat_get "$state" "$module.$1")
        users=$(users_of "$value")
        if [ -n "$value" ] && [ -n "$users" ]; then echo "warning: the $2 $value is still used by $users" >&2; fi
    fi
    edit_state "" "" ""
    write_state
    rm -f "$record_file"
    echo "Destroyed: removed the \`$module\` section of the state."
}

metadata() {
    no_arguments "$@"
    cat "$here/metadata.yaml"
}

# Runs the method named by the first argument; the script defines the functions.
dispatch() {
    if [ $# -eq 0 ]; then fail "no method given" "pass one of: $(echo $methods | sed 's/ /, /g')"; fi
    method=$1
    shift
    case " $methods " in
        *" $method "*) ;;
        *) fail "unknown method \`$method\`" "methods are: $(echo $methods | sed 's/ /, /g')" ;;
    esac
    "$method" "$@"
}

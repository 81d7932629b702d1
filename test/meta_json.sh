#!/usr/bin/env bash
# Checks META.json (the PGXN distribution metadata, meta spec 1.0.0): valid
# JSON, every field the spec requires present with the right type, the
# optional fields it defines of the right type where present, the version
# that of default_version in pg_uring.control, and the file named by
# provides.pg_uring present in the tree.  Prints one line and exits 0, or
# names every problem found and exits 1.
#
#   bash test/meta_json.sh [META.json] [top directory]
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
meta=${1:-$top/META.json}
dir=${2:-$top}

exec python3 - "$meta" "$dir" <<'PY'
import json
import os
import re
import sys

meta_path, top = sys.argv[1], sys.argv[2]
problems = []


def bad(msg):
    problems.append(msg)


# SemVer 1.0.0, which the PGXN meta spec 1.0.0 refers to (a prerelease
# tag is letters and digits after a dash)
SEMVER = re.compile(r'^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)'
                    r'(-[A-Za-z][0-9A-Za-z-]*)?$')
# a version range: a version, or an operator and a version, comma separated
RANGE_ITEM = re.compile(r'^\s*(==|!=|>=|<=|>|<)?\s*(\S+)\s*$')
# the license strings the spec lists
LICENSES = {
    'agpl_3', 'apache_1_1', 'apache_2_0', 'artistic_1', 'artistic_2', 'bsd',
    'freebsd', 'gfdl_1_2', 'gfdl_1_3', 'gpl_1', 'gpl_2', 'gpl_3', 'lgpl_2_1',
    'lgpl_3_0', 'mit', 'mozilla_1_0', 'mozilla_1_1', 'openssl', 'perl_5',
    'postgresql', 'qpl_1_0', 'ssleay', 'sun', 'zlib', 'open_source',
    'restricted', 'unrestricted', 'unknown',
}
PHASES = {'configure', 'build', 'test', 'runtime', 'develop'}
RELATIONS = {'requires', 'recommends', 'suggests', 'conflicts'}
STATUSES = {'stable', 'testing', 'unstable'}


def is_term(v):
    # a "Term": at least two characters, no whitespace, control
    # characters, slash, backslash or colon
    return (isinstance(v, str) and len(v) >= 2
            and not re.search(r'[\s/\\:\x00-\x1f\x7f]', v))


def is_semver(v):
    return isinstance(v, str) and SEMVER.match(v) is not None


def is_range(v):
    if v == 0:
        return True
    if not isinstance(v, str) or v == '':
        return False
    for item in v.split(','):
        m = RANGE_ITEM.match(item)
        if m is None:
            return False
        ver = m.group(2)
        if not (ver == '0' or is_semver(ver)):
            return False
    return True


def is_str_list(v, nonempty=True):
    return (isinstance(v, list) and (len(v) > 0 or not nonempty)
            and all(isinstance(x, str) and x != '' for x in v))


try:
    with open(meta_path, encoding='utf-8') as f:
        text = f.read()
except OSError as e:
    print(f"test/meta_json.sh: cannot read {meta_path}: {e.strerror}")
    sys.exit(1)
try:
    meta = json.loads(text)
except json.JSONDecodeError as e:
    print(f"test/meta_json.sh: {meta_path} is not valid JSON: {e.msg} "
          f"at line {e.lineno}, column {e.colno}")
    sys.exit(1)
if not isinstance(meta, dict):
    print(f"test/meta_json.sh: {meta_path}: the top level is a "
          f"{type(meta).__name__}, not an object")
    sys.exit(1)

# required fields
required = ['name', 'version', 'abstract', 'maintainer', 'license',
            'provides', 'meta-spec']
for key in required:
    if key not in meta:
        bad(f'required field "{key}" is missing')

if 'name' in meta and not is_term(meta['name']):
    bad('"name" must be a string of at least two characters without '
        'whitespace, "/", "\\" or ":"')
if 'version' in meta and not is_semver(meta['version']):
    bad(f'"version" must be a semantic version string (like "1.1.0"), '
        f'not {json.dumps(meta["version"])}')
if 'abstract' in meta and not (isinstance(meta['abstract'], str)
                               and meta['abstract'].strip()):
    bad('"abstract" must be a non-empty string')
if 'maintainer' in meta:
    m = meta['maintainer']
    if not ((isinstance(m, str) and m.strip()) or is_str_list(m)):
        bad('"maintainer" must be a non-empty string or a non-empty list '
            'of strings')
if 'license' in meta:
    lic = meta['license']
    if isinstance(lic, str):
        if lic not in LICENSES:
            bad(f'"license" {json.dumps(lic)} is none of the spec\'s '
                f'license strings')
    elif is_str_list(lic):
        for x in lic:
            if x not in LICENSES:
                bad(f'"license" {json.dumps(x)} is none of the spec\'s '
                    f'license strings')
    elif isinstance(lic, dict) and lic:
        if not all(isinstance(v, str) for v in lic.values()):
            bad('"license" as an object maps license names to URL strings')
    else:
        bad('"license" must be a string, a list of strings or an object '
            'of names and URLs')
if 'meta-spec' in meta:
    ms = meta['meta-spec']
    if not isinstance(ms, dict):
        bad('"meta-spec" must be an object')
    else:
        if 'version' not in ms:
            bad('required field "meta-spec.version" is missing')
        elif ms['version'] != '1.0.0':
            bad(f'"meta-spec.version" must be "1.0.0", the spec this file '
                f'follows, not {json.dumps(ms["version"])}')
        if 'url' in ms and not isinstance(ms['url'], str):
            bad('"meta-spec.url" must be a string')
if 'provides' in meta:
    prov = meta['provides']
    if not isinstance(prov, dict) or not prov:
        bad('"provides" must be a non-empty object of extensions')
    else:
        for ext, spec in prov.items():
            where = f'"provides.{ext}"'
            if not is_term(ext):
                bad(f'{where}: the extension name is not a valid term')
            if not isinstance(spec, dict):
                bad(f'{where} must be an object')
                continue
            for key in ('file', 'version'):
                if key not in spec:
                    bad(f'required field {where[:-1]}.{key}" is missing')
            if 'file' in spec and not (isinstance(spec['file'], str)
                                       and spec['file']):
                bad(f'{where[:-1]}.file" must be a non-empty string')
            if 'version' in spec and not is_semver(spec['version']):
                bad(f'{where[:-1]}.version" must be a semantic version '
                    f'string, not {json.dumps(spec["version"])}')
            for key in ('abstract', 'docfile'):
                if key in spec and not isinstance(spec[key], str):
                    bad(f'{where[:-1]}.{key}" must be a string')

# optional fields the spec defines
if 'description' in meta and not isinstance(meta['description'], str):
    bad('"description" must be a string')
if 'generated_by' in meta and not isinstance(meta['generated_by'], str):
    bad('"generated_by" must be a string')
if 'tags' in meta:
    if not is_str_list(meta['tags']):
        bad('"tags" must be a non-empty list of non-empty strings')
    elif any(len(t) > 255 for t in meta['tags']):
        bad('"tags": a tag is longer than 255 characters')
if 'release_status' in meta and meta['release_status'] not in STATUSES:
    bad(f'"release_status" must be one of {", ".join(sorted(STATUSES))}, '
        f'not {json.dumps(meta["release_status"])}')
if 'resources' in meta:
    res = meta['resources']
    if not isinstance(res, dict):
        bad('"resources" must be an object')
    else:
        for key in ('homepage',):
            if key in res and not isinstance(res[key], str):
                bad(f'"resources.{key}" must be a URL string')
        for key in ('bugtracker', 'repository'):
            if key in res and not (isinstance(res[key], dict)
                                   and all(isinstance(v, str)
                                           for v in res[key].values())):
                bad(f'"resources.{key}" must be an object of strings')
if 'no_index' in meta:
    ni = meta['no_index']
    if not (isinstance(ni, dict)
            and all(k in ('file', 'directory') and is_str_list(v)
                    for k, v in ni.items())):
        bad('"no_index" must be an object with "file" and/or "directory" '
            'lists of strings')
if 'prereqs' in meta:
    pre = meta['prereqs']
    if not isinstance(pre, dict):
        bad('"prereqs" must be an object')
    else:
        for phase, rels in pre.items():
            if phase not in PHASES:
                bad(f'"prereqs.{phase}": not a phase of the spec '
                    f'({", ".join(sorted(PHASES))})')
                continue
            if not isinstance(rels, dict):
                bad(f'"prereqs.{phase}" must be an object')
                continue
            for rel, deps in rels.items():
                where = f'"prereqs.{phase}.{rel}"'
                if rel not in RELATIONS:
                    bad(f'{where}: not a relationship of the spec')
                elif not isinstance(deps, dict):
                    bad(f'{where} must be an object of names and versions')
                else:
                    for dep, ver in deps.items():
                        if not is_range(ver):
                            bad(f'{where[:-1]}.{dep}": {json.dumps(ver)} is '
                                f'not a version or version range')

# pg_uring's own: the version is the extension's default_version, and the
# file it names is there
control_path = os.path.join(top, 'pg_uring.control')
default_version = None
try:
    with open(control_path, encoding='utf-8') as f:
        for line in f:
            m = re.match(r"^\s*default_version\s*=\s*'([^']*)'", line)
            if m:
                default_version = m.group(1)
except OSError as e:
    bad(f'cannot read {control_path}: {e.strerror}')
if default_version is None:
    bad(f'{control_path} has no default_version')


def as_semver(v):
    # the control file's "1.1" is SemVer "1.1.0"
    parts = v.split('.')
    while len(parts) < 3:
        parts.append('0')
    return '.'.join(parts)


if default_version is not None:
    want = as_semver(default_version)
    if isinstance(meta.get('version'), str) and meta['version'] != want:
        bad(f'"version" is {json.dumps(meta["version"])}, but '
            f'pg_uring.control has default_version = \'{default_version}\' '
            f'("{want}" in META.json)')
    ext = meta.get('provides', {})
    ext = ext.get('pg_uring') if isinstance(ext, dict) else None
    if isinstance(ext, dict) and isinstance(ext.get('version'), str) \
            and ext['version'] != want:
        bad(f'"provides.pg_uring.version" is {json.dumps(ext["version"])}, '
            f'but pg_uring.control has default_version = '
            f'\'{default_version}\' ("{want}" in META.json)')

prov = meta.get('provides')
if isinstance(prov, dict):
    ext = prov.get('pg_uring')
    if ext is None:
        bad('"provides" has no "pg_uring"')
    elif isinstance(ext, dict) and isinstance(ext.get('file'), str) \
            and ext['file']:
        if not os.path.isfile(os.path.join(top, ext['file'])):
            bad(f'"provides.pg_uring.file" names {ext["file"]}, which is '
                f'not a file in {top}')
    if isinstance(ext, dict) and isinstance(ext.get('docfile'), str) \
            and not os.path.isfile(os.path.join(top, ext['docfile'])):
        bad(f'"provides.pg_uring.docfile" names {ext["docfile"]}, which is '
            f'not a file in {top}')

if problems:
    for p in problems:
        print(f'test/meta_json.sh: {meta_path}: {p}')
    print(f'META.json ... FAILED ({len(problems)} problem'
          f'{"" if len(problems) == 1 else "s"})')
    sys.exit(1)
print(f'META.json ({meta["name"]} {meta["version"]}, meta spec '
      f'{meta["meta-spec"]["version"]}) ... ok')
PY

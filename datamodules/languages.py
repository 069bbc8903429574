"""Language names: the canonical spelling of a language (The Stack's / Linguist's), its other
spellings, and the file names and extensions that imply it. Data sources label documents with
these names, and `--lang-weights` matches them in any case.
"""

from __future__ import annotations

import os

# Canonical language names (The Stack / Linguist spelling) | other spellings | file extensions.
_LANGUAGE_TABLE = """
Python           | py python3               | .py .pyw .pyi
Java             |                          | .java
JavaScript       | js node nodejs           | .js .mjs .cjs .jsx
TypeScript       | ts                       | .ts .tsx .mts .cts
C                |                          | .c .h
C++              | cpp cxx c-plus-plus      | .cc .cpp .cxx .c++ .hh .hpp .hxx .h++ .ipp
C#               | csharp c-sharp cs        | .cs
CUDA             | cu                       | .cu .cuh
Go               | golang                   | .go
Rust             | rs                       | .rs
Ruby             | rb                       | .rb
PHP              |                          | .php
Shell            | bash sh zsh              | .sh .bash .zsh
PowerShell       | ps1 pwsh                 | .ps1 .psm1
Batchfile        | batch bat                | .bat .cmd
HTML             | htm xhtml                | .html .htm .xhtml
CSS              |                          | .css
SCSS             | sass                     | .scss .sass
Vue              |                          | .vue
Markdown         | md                       | .md .markdown
reStructuredText | rst                      | .rst
TeX              | latex                    | .tex .sty .cls
JSON             |                          | .json
YAML             | yml                      | .yaml .yml
TOML             |                          | .toml
XML              |                          | .xml
SQL              |                          | .sql
Kotlin           | kt                       | .kt .kts
Scala            |                          | .scala
Swift            |                          | .swift
Objective-C      | objc objectivec          | .mm
Dart             |                          | .dart
Lua              |                          | .lua
R                |                          | .r
Julia            | jl                       | .jl
MATLAB           |                          |
Perl             | pl                       | .pl .pm
Haskell          | hs                       | .hs
OCaml            |                          | .ml .mli
F#               | fsharp f-sharp           | .fs .fsx
Elixir           |                          | .ex .exs
Erlang           |                          | .erl .hrl
Clojure          |                          | .clj .cljs
Scheme           |                          | .scm
Racket           |                          | .rkt
Common Lisp      | lisp                     | .lisp
Emacs Lisp       | elisp                    | .el
Groovy           |                          | .groovy .gradle
Visual Basic     | vb vba                   | .vb
Fortran          |                          | .f .f90 .f95 .f03
Pascal           |                          | .pas
Assembly         | asm                      | .asm .s
Zig              |                          | .zig
Nim              |                          | .nim
Verilog          |                          | .v
VHDL             |                          | .vhd .vhdl
Solidity         |                          | .sol
Protocol Buffer  | protobuf proto           | .proto
CMake            |                          | .cmake
Makefile         | make                     | .mk
Dockerfile       | docker                   |
Jupyter Notebook | ipynb jupyter            | .ipynb
Text             | txt plain-text           | .txt
English          | en                       |
"""
_FILE_NAMES = {
    "makefile": "Makefile",
    "gnumakefile": "Makefile",
    "dockerfile": "Dockerfile",
    "cmakelists.txt": "CMake",
}


def _language_key(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


_BY_ALIAS: dict[str, str] = {}
_BY_EXTENSION: dict[str, str] = {}
for _row in _LANGUAGE_TABLE.strip().splitlines():
    _name, _aliases, _extensions = (cell.strip() for cell in _row.split("|"))
    _BY_ALIAS.update((_language_key(alias), _name) for alias in [_name, *_aliases.split()])
    _BY_EXTENSION.update((extension, _name) for extension in _extensions.split())


def canonical_language(name: str) -> str:
    """'python', 'py' -> 'Python'; 'c-sharp' -> 'C#'. Unknown names are kept as given (stripped)."""
    return _BY_ALIAS.get(_language_key(name), name.strip())


def known_language(name: str) -> bool:
    """Whether `name` is a language name or alias of the table above (any case)."""
    return _language_key(name) in _BY_ALIAS


def language_of_path(path: str) -> str | None:
    """Language from a file's name or extension, None when neither is known."""
    name = os.path.basename(path).lower()
    return _FILE_NAMES.get(name) or _BY_EXTENSION.get(os.path.splitext(name)[1])

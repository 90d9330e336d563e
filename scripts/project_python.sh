# Sourced by the scripts that run Python: sets PYTHON, unless the caller did, to the
# project's .venv interpreter when there is one, else to python3 (one rule for all).
# A relative path (make passes .venv/bin/python) is made absolute, as the scripts change
# directory; symlinks are kept, since resolving a venv's would leave the venv.
if [[ -z "${PYTHON:-}" ]]; then
    _root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    if [[ -x "$_root/.venv/bin/python" ]]; then
        PYTHON="$_root/.venv/bin/python"
    else
        PYTHON="$(command -v python3)"
    fi
    unset _root
elif [[ "$PYTHON" == */* && "$PYTHON" != /* ]]; then
    PYTHON="$PWD/$PYTHON"
fi

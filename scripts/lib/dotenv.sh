# shellcheck shell=bash
# canopy_load_dotenv FILE: exports the KEY=VALUE lines of a .env file, the way
# pydantic-settings/python-dotenv read it, WITHOUT overriding variables that are already
# set in the environment (so `API_PORT=9000 make run` beats API_PORT=8000 in .env).
# Understands comments, blank lines, `export KEY=...`, single or double quotes and
# ` # comments` after unquoted values. Nothing in the file is executed.
canopy_load_dotenv() {
  local file=$1 line key value
  [[ -f $file ]] || return 0
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    line=${line#"${line%%[![:space:]]*}"}
    [[ -z $line || $line == \#* ]] && continue
    line=${line#export }
    [[ $line =~ ^([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=[[:space:]]*(.*)$ ]] || continue
    key=${BASH_REMATCH[1]}
    value=${BASH_REMATCH[2]}
    if [[ $value =~ ^\"(.*)\"([[:space:]]+#.*)?[[:space:]]*$ ]]; then
      value=${BASH_REMATCH[1]}
    elif [[ $value =~ ^\'(.*)\'([[:space:]]+#.*)?[[:space:]]*$ ]]; then
      value=${BASH_REMATCH[1]}
    else
      value=${value%%[[:space:]]#*}
      value=${value%"${value##*[![:space:]]}"}
    fi
    [[ -n ${!key+set} ]] && continue
    export "$key=$value"
  done <"$file"
}

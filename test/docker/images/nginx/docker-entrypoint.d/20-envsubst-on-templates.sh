#!/bin/sh
# Official image behaviour: renders every NGINX_ENVSUBST_TEMPLATE_DIR/**/NAME.conf<SUFFIX>
# (default /etc/nginx/templates, suffix .template) to NGINX_ENVSUBST_OUTPUT_DIR/**/NAME.conf
# (default /etc/nginx/conf.d) with envsubst, substituting only variables that are defined in the
# environment (optionally only names matching the regular expression NGINX_ENVSUBST_FILTER), so
# nginx's own $variables survive. No template directory: nothing to do. An output directory that
# is not writable: an error line, and nginx starts with what is there.
set -e

ME=$(basename "$0")

entrypoint_log() {
  if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
    echo "$@"
  fi
}

auto_envsubst() {
  template_dir="${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}"
  suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
  output_dir="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
  filter="${NGINX_ENVSUBST_FILTER:-}"

  # shellcheck disable=SC2016,SC2046 # one ${NAME} per defined variable
  defined_envs=$(printf '${%s} ' $(awk "END { for (name in ENVIRON) { print ( name ~ /${filter}/ ) ? name : \"\" } }" </dev/null))
  [ -d "$template_dir" ] || return 0
  if [ ! -w "$output_dir" ]; then
    entrypoint_log "$ME: ERROR: $template_dir exists, but $output_dir is not writable"
    return 0
  fi
  find "$template_dir" -follow -type f -name "*$suffix" -print | while read -r template; do
    relative_path="${template#"$template_dir/"}"
    output_path="$output_dir/${relative_path%"$suffix"}"
    subdir=$(dirname "$relative_path")
    mkdir -p "$output_dir/$subdir"
    entrypoint_log "$ME: Running envsubst on $template to $output_path"
    envsubst "$defined_envs" <"$template" >"$output_path"
  done
}

auto_envsubst

exit 0

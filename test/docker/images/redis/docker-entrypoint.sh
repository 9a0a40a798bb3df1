#!/bin/sh
# Entrypoint of the test bed's redis stand-in, with the official image's documented behaviour:
# flags or a *.conf file as the first argument mean `redis-server ...`; redis-server started as
# root takes ownership of /data (the working directory) and drops to the `redis` user; the default
# umask becomes 0077; anything else is executed as given.
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi

if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec gosu redis "$0" "$@"
fi

if [ "$(umask)" = 0022 ]; then
  umask 0077
fi

exec "$@"

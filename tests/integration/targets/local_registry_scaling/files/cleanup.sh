#!/usr/bin/env bash
# Stops what the local_registry_scaling test started and removes what the role wrote for it:
# cleanup.sh SCRATCH_DIR "INSTANCE_NAME ...". Every step is bounded and runs even when another fails.
dir=$1
read -r -a names <<< "$2"
for name in "${names[@]/#/local-registry-}" local-registry-lb; do
  if [ -x "/etc/init.d/$name" ]; then timeout 60 "/etc/init.d/$name" stop; fi
  update-rc.d -f "$name" remove > /dev/null 2>&1
  rm -f "/etc/init.d/$name" "/var/log/$name.log" "/run/$name.pid"
done
for name in "${names[@]}"; do
  rm -f "/etc/docker/registry/instances/$name.yml"
done
rmdir /etc/docker/registry/instances 2> /dev/null
rm -f /etc/haproxy/local-registry.cfg
# The processes the test started itself, by their pidfiles.
for pidfile in "$dir/moto.pid" "$dir/upstream.pid" "$dir/redis/redis.pid"; do
  [ -s "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  kill "$pid" 2> /dev/null || continue
  for _ in $(seq 50); do
    kill -0 "$pid" 2> /dev/null || break
    [ "$(sed 's/^.*) //' "/proc/$pid/stat" 2> /dev/null | cut -c1)" = Z ] && break
    sleep 0.2
  done
  kill -KILL "$pid" 2> /dev/null
done
exit 0

#!/usr/bin/env bash
# make dev: runs ZooKeeper, the Temporal dev server with its Web UI, MinIO with a bucket, a
# demo Pulsar metadata tree, the worker (backups every 30 s) and the API. Ctrl-C stops
# everything this script started. State lives in .dev/ (delete it for a fresh start).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/bin
DEV=$ROOT/.dev
ZOOKEEPER_HOME=${ZOOKEEPER_HOME:-/usr/share/zookeeper}

ZK_PORT=${ZK_PORT:-2181}
# DEV_CONFIG_STORE=1 make dev: a second ensemble on ZK2_PORT as the configuration store apart
# (configurationStore.servers, under the chroot /conf), seeded with the demo's tenants.
DEV_CONFIG_STORE=${DEV_CONFIG_STORE:-}
ZK2_PORT=${ZK2_PORT:-2182}
TEMPORAL_PORT=${TEMPORAL_PORT:-7233}
TEMPORAL_UI_PORT=${TEMPORAL_UI_PORT:-8233}
MINIO_PORT=${MINIO_PORT:-9000}
MINIO_CONSOLE_PORT=${MINIO_CONSOLE_PORT:-9001}
API_PORT=${API_PORT:-8088}
INTERVAL=${BACKUP_INTERVAL:-30}

export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-minioadmin}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-minioadmin}
export AWS_REGION=us-east-1

mkdir -p "$DEV"/{zk/data,zk2/data,minio,staging,logs}
PIDS=()
cleanup() {
	trap - INT TERM EXIT
	echo
	echo "stopping..."
	for ((i=${#PIDS[@]}-1; i>=0; i--)); do kill -TERM -- "-${PIDS[i]}" 2>/dev/null || kill -TERM "${PIDS[i]}" 2>/dev/null || true; done
	wait 2>/dev/null || true
	echo "stopped; state kept in .dev/"
}
trap cleanup INT TERM EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in $ZK_PORT ${DEV_CONFIG_STORE:+$ZK2_PORT} $TEMPORAL_PORT $TEMPORAL_UI_PORT $MINIO_PORT $MINIO_CONSOLE_PORT $API_PORT; do
	port_free "$p" || { echo "port $p is in use: stop what holds it, or set the *_PORT variables"; exit 1; }
done
wait_port() { # name port
	for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0; sleep 0.2; done
	echo "$1 did not start on port $2; see .dev/logs/$1.log"; exit 1
}
start() { # name command...
	local name=$1; shift
	setsid "$@" >"$DEV/logs/$name.log" 2>&1 &
	PIDS+=($!)
}

zk_start() { # name dir port
	cat >"$2/zoo.cfg" <<CFG
tickTime=2000
dataDir=$2/data
clientPort=$3
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=srvr,ruok,mntr
extendedTypesEnabled=true
CFG
	ZOOCFGDIR=$2 ZOO_LOG_DIR=$DEV/logs/$1 JVMFLAGS="-Xmx512m" start "$1" "$ZOOKEEPER_HOME/bin/zkServer.sh" start-foreground "$2/zoo.cfg"
}
mkdir -p "$DEV/logs/zookeeper" "$DEV/logs/zookeeper2"
zk_start zookeeper "$DEV/zk" "$ZK_PORT"
[ -z "$DEV_CONFIG_STORE" ] || zk_start zookeeper2 "$DEV/zk2" "$ZK2_PORT"

start temporal "$BIN/temporal" server start-dev --ip 127.0.0.1 --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" \
	--db-filename "$DEV/temporal.db" --search-attribute MetadataBackupTarget=Keyword --search-attribute MetadataBackupSummary=Text --log-level warn

MINIO_ROOT_USER=$AWS_ACCESS_KEY_ID MINIO_ROOT_PASSWORD=$AWS_SECRET_ACCESS_KEY MINIO_UPDATE=off \
	start minio "$BIN/minio" server --address "127.0.0.1:$MINIO_PORT" --console-address "127.0.0.1:$MINIO_CONSOLE_PORT" "$DEV/minio"

wait_port zookeeper "$ZK_PORT"
[ -z "$DEV_CONFIG_STORE" ] || wait_port zookeeper2 "$ZK2_PORT"
wait_port temporal "$TEMPORAL_PORT"
wait_port minio "$MINIO_PORT"

CONFIG_STORE_SERVERS=""
[ -z "$DEV_CONFIG_STORE" ] || CONFIG_STORE_SERVERS="zk:127.0.0.1:$ZK2_PORT/conf"
cat >"$DEV/config.yaml" <<CFG
zookeeper:
  servers: "127.0.0.1:$ZK_PORT"
  sessionTimeout: 30s
configurationStore:
  servers: "$CONFIG_STORE_SERVERS"
temporal:
  hostPort: "127.0.0.1:$TEMPORAL_PORT"
  namespace: "default"
  taskQueue: "metadata-backup"
s3:
  endpoint: "http://127.0.0.1:$MINIO_PORT"
  region: "us-east-1"
  forcePathStyle: true
backup:
  enable: true
  webServerPort: $API_PORT
  backupInterval: $INTERVAL
  bucket: "s3a://metadata-backup"
  backupPrefix: "metadata-backup"
  managedLedgerPath: "/managed-ledgers"
  stagingDir: "$DEV/staging"
CFG

# Keep closed workflows for 30 days instead of the dev server's default 24 hours.
"$BIN/temporal" operator namespace update --address "127.0.0.1:$TEMPORAL_PORT" --retention 720h default >/dev/null 2>&1 || true

# Creates the bucket and a demo Pulsar tree, then stays up holding a live "broker" session
# (its ephemeral znodes are what a backup skips).
start devseed "$BIN/devseed" --config "$DEV/config.yaml"
SEEDED="^seeded"
[ -z "$DEV_CONFIG_STORE" ] || SEEDED="^seeded the configuration store"
for _ in $(seq 1 150); do grep -q "$SEEDED" "$DEV/logs/devseed.log" 2>/dev/null && break; sleep 0.2; done
grep -q "$SEEDED" "$DEV/logs/devseed.log" || { echo "demo seed failed:"; cat "$DEV/logs/devseed.log"; exit 1; }

start worker "$BIN/worker" --config "$DEV/config.yaml"
start api "$BIN/api" --config "$DEV/config.yaml"
wait_port api "$API_PORT"

cat <<MSG

pulsar-metadata-backup is running (backups every ${INTERVAL}s; the first lands within a minute):
  Temporal Web UI   http://localhost:$TEMPORAL_UI_PORT/namespaces/default/workflows   (schedule: http://localhost:$TEMPORAL_UI_PORT/namespaces/default/schedules/metadata-backup)
  MinIO console     http://localhost:$MINIO_CONSOLE_PORT   (user $AWS_ACCESS_KEY_ID, password in AWS_SECRET_ACCESS_KEY; bucket metadata-backup)
  API               curl localhost:$API_PORT/backup/latest
                    curl localhost:$API_PORT/backup/list
                    curl localhost:$API_PORT/metrics
  One backup now    AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=... bin/starter --config .dev/config.yaml backup
  Logs              .dev/logs/

Ctrl-C stops everything.
MSG
wait -n "${PIDS[@]}" || true
echo "a process exited; see .dev/logs/"

#!/bin/sh
# The broker users deploy/policy.toml names, created or updated on every `compose up`
# (an init service: compose.yaml's broker-users), each password from a compose secret.
#   conductor  the conductors: their topic's queues and exchanges, replies to callers
#   compute    nova-compute nodes: publish calls to the default exchange, nothing else
#   operator   operators' tools: calls, `conductor status`, `conductor events tail`
# The guest login is removed: the image's guest works from localhost only anyway.
set -eu
NODE="${RABBITMQ_NODE:-rabbit@rabbitmq}"
COOKIE_FILE="${RABBITMQ_COOKIE_FILE:-/var/lib/rabbitmq/.erlang.cookie}"
SECRETS="${SECRETS_DIR:-/run/secrets}"

ctl() {
    rabbitmqctl --quiet --node "$NODE" --erlang-cookie "$(cat "$COOKIE_FILE")" "$@"
}

# user NAME CONFIGURE WRITE READ: the password is the secret amqp_NAME_password.
user() {
    password="$(head -n 1 "$SECRETS/amqp_$1_password")"
    if ctl list_users --silent | cut -f 1 | grep -qx "$1"; then
        ctl change_password "$1" "$password"
    else
        ctl add_user "$1" "$password"
    fi
    ctl set_permissions --vhost / "$1" "$2" "$3" "$4"
    echo "broker user $1: ready"
}

user conductor '^conductor.*' '^(conductor.*|amq\.default)$' '^conductor.*'
user compute '^$' '^amq\.default$' '^$'
# events tail: a server-named queue of its own bound to conductor.events; status: passive
# declares of the topic queues.
user operator '^(conductor.*|amq\.gen-.*)$' '^(amq\.default|amq\.gen-.*)$' \
    '^(conductor.*|amq\.gen-.*)$'
if ctl list_users --silent | cut -f 1 | grep -qx guest; then
    ctl delete_user guest
fi

#!/usr/bin/env bash
# A real Secret Service for the keyring key-source tests: gnome-keyring under dbus-run-session.
set -euo pipefail
if ! command -v gnome-keyring-daemon >/dev/null || ! command -v dbus-run-session >/dev/null; then
  apt-get install -y -qq --no-install-recommends gnome-keyring dbus dbus-bin >/dev/null
fi
command -v gnome-keyring-daemon >/dev/null && command -v dbus-run-session >/dev/null

#!/usr/bin/env bash
# Install Tingxie's desktop entry (with the MIME types it opens), AppStream metainfo and icons
# for the current user, in the XDG data folder. `make install-desktop` runs it; TINGXIE_EXEC
# overrides the program the entry starts (default: this checkout's .venv/bin/tingxie).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
exe="${TINGXIE_EXEC:-$root/.venv/bin/tingxie}"
id=org.tingxie.Tingxie

mkdir -p "$data/applications" "$data/metainfo"
# Exec and TryExec name this installation's program. In Exec it is a quoted argument, so as the
# desktop entry spec asks: \ " ` $ escaped inside the quotes, every backslash doubled again for
# the file's string escapes, % written %%; TryExec is a plain string (backslashes doubled). No
# sed: a path holding & | or \ would be read as its replacement syntax.
quoted="${exe//\\/\\\\\\\\}"
quoted="${quoted//\"/\\\\\"}"
quoted="${quoted//\`/\\\\\`}"
quoted="${quoted//\$/\\\\\$}"
quoted="${quoted//\%/%%}"
while IFS= read -r line; do
    case "$line" in
        Exec=tingxie*) printf 'Exec="%s"%s\n' "$quoted" "${line#Exec=tingxie}" ;;
        TryExec=tingxie) printf 'TryExec=%s\n' "${exe//\\/\\\\}" ;;
        *) printf '%s\n' "$line" ;;
    esac
done < "$root/packaging/desktop/$id.desktop" > "$data/applications/$id.desktop"
install -m644 "$root/packaging/desktop/$id.metainfo.xml" "$data/metainfo/$id.metainfo.xml"
for png in "$root"/resources/icons/hicolor/*/apps/$id.png; do
    size="$(basename "$(dirname "$(dirname "$png")")")"
    install -D -m644 "$png" "$data/icons/hicolor/$size/apps/$id.png"
done
install -D -m644 "$root/resources/icons/$id.svg" "$data/icons/hicolor/scalable/apps/$id.svg"
if command -v update-desktop-database >/dev/null; then
    update-desktop-database -q "$data/applications" || true
fi
if command -v gtk-update-icon-cache >/dev/null; then
    gtk-update-icon-cache -q -t "$data/icons/hicolor" || true
fi
echo "installed $id for $(id -un) in $data (starts $exe)"

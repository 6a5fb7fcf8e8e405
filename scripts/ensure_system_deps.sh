#!/usr/bin/env bash
# Installs the system programs bargan needs that pip cannot provide.
#   scripts/ensure_system_deps.sh          Rubber Band (time-stretching)
#   scripts/ensure_system_deps.sh --test   also Chromium (the report's browser test) and, for
#                                          the SLURM test's one-node cluster, slurmctld, slurmd,
#                                          slurm-client, munge, and slurmdbd with MariaDB (the
#                                          accounting that sacct reads). The test starts its own
#                                          daemons, with their own configuration and ports; the
#                                          SLURM services stay off (no /etc/slurm/slurm.conf).
#                                          Also FluidSynth and the FluidR3 General MIDI
#                                          SoundFont, which bench/dev_corpus.py renders with.
#                                          And SoX, which decodes the exported sample packs
#                                          in their test (a decoder that is not libsndfile).
#                                          And, for bench/thirdparty_corpus.py's test,
#                                          libopenmpt (tracker modules), OpenMSX's MIDI files
#                                          (openttd-openmsx), TecnoballZ's modules
#                                          (tecnoballz-data) and the corpus's other sound
#                                          sets (TimGM6mb, MuseScore General Lite, OPL-3 FM);
#                                          Freedoom's WADs (freedoom) for the downbeat
#                                          regression tests.
# As root it uses apt-get; otherwise it names the missing packages and fails.
set -euo pipefail
missing=()
# Daemons live in /usr/sbin, which is not on every PATH.
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
need() { have "$1" || missing+=("$2"); }
# A package that installs a data file rather than a program.
need_file() { [ -e "$1" ] || missing+=("$2"); }
# A shared library, found by the dynamic linker.
need_lib() { /sbin/ldconfig -p 2>/dev/null | grep -q "$1" || missing+=("$2"); }
need rubberband rubberband-cli
if [ "${1:-}" = "--test" ]; then
    need chromium chromium
    need slurmctld slurmctld
    need slurmd slurmd
    need sbatch slurm-client
    need munged munge
    need slurmdbd slurmdbd
    need mariadbd mariadb-server
    need fluidsynth fluidsynth
    need_file /usr/share/sounds/sf2/FluidR3_GM.sf2 fluid-soundfont-gm
    need sox sox
    need_lib libopenmpt.so.0 libopenmpt0
    need_file /usr/share/games/openttd/baseset/openmsx/openmsx.obm openttd-openmsx
    need_file /usr/share/games/tecnoballz/musics/high-score.mod tecnoballz-data
    need_file /usr/share/games/doom/freedoom1.wad freedoom
    need_file /usr/share/sounds/sf2/TimGM6mb.sf2 timgm6mb-soundfont
    need_file /usr/share/sounds/sf3/MuseScore_General_Lite.sf3 musescore-general-soundfont-small
    need_file /usr/share/sounds/sf2/OPL-3_FM_128M.sf2 opl3-soundfont
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bargan: installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "bargan: missing system package(s): ${missing[*]}." >&2
    echo "Install them, e.g. 'sudo apt-get install ${missing[*]}' (Debian/Ubuntu)." >&2
    exit 1
fi

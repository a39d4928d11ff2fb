#!/usr/bin/env bash
# The real CRDs of the two controllers that the test doubles stand in for, from Maven Central (see NOTES.md):
#   fko      the Flink Kubernetes Operator's CRDs, as fabric8 generated them into META-INF/fabric8/ of
#            org.apache.flink:flink-kubernetes-operator-api (only the apiextensions.k8s.io/v1 files), with one
#            deliberate patch: FlinkDeployment's spec.flinkVersion enum is that of a newer FKO (FKO_FLINK_VERSIONS)
#   strimzi  KafkaTopic and KafkaUser, generated as Strimzi's own build does, by io.strimzi:crd-generator over the
#            model classes of io.strimzi:api (no Strimzi jar carries CRD YAML); needs Java >= 21
#
#   testbed/upstream-crds/fetch.sh [all|fko|strimzi]   fetch (cached) and print each directory of CRD YAMLs, one a line
#                                                       (all: fko first, then strimzi)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FKO_VERSION="${FKO_VERSION:-1.10.0}"         # keep equal to <fko.version> in pom.xml
STRIMZI_VERSION="${STRIMZI_VERSION:-1.2.0}"  # keep equal to <strimzi.version> in pom.xml
# The patch (NOTES.md): Maven Central here stops at FKO 1.10.0, whose flinkVersion enum ends at v1_20, so the
# apiserver refuses `flinkVersion: v2_x`. FKO 1.x takes v2_x from 1.11 (v2_0) on; this is the enum of FKO 1.x's
# newest release, 1.15.0: apache/flink-kubernetes-operator@release-1.15.0, flink-kubernetes-operator-api/src/
# main/java/org/apache/flink/kubernetes/operator/api/spec/FlinkVersion.java, from which fabric8 generates the
# CRD's enum at build time. Nothing else in the 1.10.0 CRD changes. Change FKO_ENUM_RELEASE with the list: it
# keys the cache.
FKO_ENUM_RELEASE="1.15.0"
FKO_FLINK_VERSIONS="v1_13 v1_14 v1_15 v1_16 v1_17 v1_18 v1_19 v1_20 v2_0 v2_1 v2_2 v2_3 v2_4"
CACHE="${KAPPA_CACHE:-$HOME/.cache/kappa-operator}"
OUT="$CACHE/upstream-crds"
FKO_DIR="$OUT/fko-$FKO_VERSION-flinkversion-enum-$FKO_ENUM_RELEASE"
STRIMZI_DIR="$OUT/strimzi-$STRIMZI_VERSION"

log() { echo "upstream-crds: $*" >&2; }

ensure_tools() {
  local missing=()
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  [[ ${#missing[@]} -eq 0 ]] && return
  log "installing ${missing[*]} from Debian"
  if [[ $(id -u) -ne 0 ]]; then log "missing ${missing[*]} and I am not root: apt-get install ${missing[*]}"; exit 1; fi
  (apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1) ||
    (apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null)
}

# The jars of pom.xml with their runtime dependencies, into $LIBS (a temporary directory); ~/.m2 caches them.
fetch_jars() {
  [[ -n "${LIBS:-}" ]] && return
  ensure_tools
  mkdir -p "$OUT"
  LIBS=$(mktemp -d "$OUT/jars.XXXXXX")
  trap 'rm -rf "$LIBS"' EXIT
  log "fetching flink-kubernetes-operator-api $FKO_VERSION and Strimzi api + crd-generator $STRIMZI_VERSION"
  if ! mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    "-Dfko.version=$FKO_VERSION" "-Dstrimzi.version=$STRIMZI_VERSION" "-DoutputDirectory=$LIBS" \
    >"$LIBS/mvn.log" 2>&1; then
    cat "$LIBS/mvn.log" >&2; log "maven failed"; exit 1
  fi
}

# Each file must be one apiextensions.k8s.io/v1 CustomResourceDefinition.
check_crds() { # dir
  local f
  for f in "$1"/*; do
    if ! grep -q '^apiVersion: apiextensions.k8s.io/v1$' "$f" || ! grep -q '^kind: CustomResourceDefinition$' "$f"; then
      log "$f is not an apiextensions.k8s.io/v1 CustomResourceDefinition"; exit 1
    fi
  done
}

fko() {
  [[ -f "$FKO_DIR/.complete" ]] && return
  fetch_jars
  local tmp="$FKO_DIR.tmp"
  rm -rf "$FKO_DIR" "$tmp"; mkdir -p "$tmp"
  # The -v1beta1.yml files beside them are apiextensions.k8s.io/v1beta1, which no served Kubernetes has any more.
  python3 - "$LIBS/flink-kubernetes-operator-api-$FKO_VERSION.jar" "$tmp" "$FKO_FLINK_VERSIONS" <<'PY'
import os, re, sys, zipfile
jar, out, versions = sys.argv[1], sys.argv[2], sys.argv[3].split()
names = [n for n in zipfile.ZipFile(jar).namelist()
         if n.startswith("META-INF/fabric8/") and n.endswith(".flink.apache.org-v1.yml")]
if not names:
    sys.exit(f"no META-INF/fabric8/*.flink.apache.org-v1.yml in {jar}")
for n in names:
    text = zipfile.ZipFile(jar).read(n).decode()
    if os.path.basename(n) == "flinkdeployments.flink.apache.org-v1.yml":
        # spec.flinkVersion: `flinkVersion:` / `enum:` / one `- vX_Y` a line, at fabric8's indentation.
        enum = re.compile(r"^( +)flinkVersion:\n\1  enum:\n((?:\1  - v[0-9]+_[0-9]+\n)+)", re.M)
        found = enum.findall(text)
        if len(found) != 1:
            sys.exit(f"{n}: expected one spec.flinkVersion enum, found {len(found)}")
        indent, old = found[0]
        if not set(re.findall(r"v[0-9]+_[0-9]+", old)) <= set(versions):
            sys.exit(f"{n}: the enum {old.split()} has values that FKO_FLINK_VERSIONS drops")
        new = "".join(f"{indent}  - {v}\n" for v in versions)
        text = enum.sub(lambda m: f"{m.group(1)}flinkVersion:\n{m.group(1)}  enum:\n{new}", text)
    with open(os.path.join(out, os.path.basename(n)), "w") as f:
        f.write(text)
PY
  check_crds "$tmp"
  touch "$tmp/.complete"; mv "$tmp" "$FKO_DIR"
  log "FKO $FKO_VERSION (flinkVersion enum of $FKO_ENUM_RELEASE): $(cd "$FKO_DIR" && echo *.yml)"
}

# A java of major version >= 21: JAVA_HOME's, the one on PATH, else the newest under /usr/lib/jvm.
java21() {
  local j v jvms
  mapfile -t jvms < <(find /usr/lib/jvm -mindepth 3 -maxdepth 3 -path '*/bin/java' 2>/dev/null | sort -rV)
  for j in ${JAVA_HOME:+"$JAVA_HOME/bin/java"} "$(command -v java || true)" "${jvms[@]}"; do
    [[ -x "$j" ]] || continue
    v=$("$j" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
    [[ -n "$v" && ${v%%.*} -ge 21 ]] && { echo "$j"; return; }
  done
  return 1
}

strimzi() {
  [[ -f "$STRIMZI_DIR/.complete" ]] && return
  local java
  java=$(java21) || { log "Strimzi $STRIMZI_VERSION's crd-generator needs Java >= 21: set JAVA_HOME"; exit 1; }
  fetch_jars
  local tmp="$STRIMZI_DIR.tmp"
  rm -rf "$STRIMZI_DIR" "$tmp"; mkdir -p "$tmp"
  # The arguments of the generate-crd-co-install-v1 execution in Strimzi 1.x's api/pom.xml, and its file names.
  if ! "$java" -cp "$LIBS/*" io.strimzi.crdgenerator.CrdGenerator \
    --label app:strimzi --label strimzi.io/crd-install:true --target-kube 1.16+ \
    --crd-api-version v1 --api-versions v1 --storage-version v1 --yaml \
    "io.strimzi.api.kafka.model.topic.KafkaTopic=$tmp/043-Crd-kafkatopic.yaml" \
    "io.strimzi.api.kafka.model.user.KafkaUser=$tmp/044-Crd-kafkauser.yaml" >"$LIBS/crd-generator.log" 2>&1; then
    cat "$LIBS/crd-generator.log" >&2; log "Strimzi's crd-generator failed"; exit 1
  fi
  check_crds "$tmp"
  touch "$tmp/.complete"; mv "$tmp" "$STRIMZI_DIR"
  log "Strimzi $STRIMZI_VERSION: $(cd "$STRIMZI_DIR" && echo *.yaml)"
}

case "${1:-all}" in
  all) fko; strimzi; echo "$FKO_DIR"; echo "$STRIMZI_DIR" ;;
  fko) fko; echo "$FKO_DIR" ;;
  strimzi) strimzi; echo "$STRIMZI_DIR" ;;
  *) echo "usage: $0 [all|fko|strimzi]" >&2; exit 2 ;;
esac

#!/bin/sh
# Spark 4 runs on Java 17 (or 21); say exactly what to install when it is missing.
if [ -n "$JAVA_HOME" ] && [ -x "$JAVA_HOME/bin/java" ]; then JAVA="$JAVA_HOME/bin/java"; else JAVA=$(command -v java); fi
if [ -z "$JAVA" ]; then
  echo "campaignlake needs Java 17 and none was found." >&2
  echo "Install it: Debian/Ubuntu 'sudo apt-get install openjdk-17-jre-headless'," >&2
  echo "macOS 'brew install openjdk@17', or set JAVA_HOME to a Java 17 installation." >&2
  exit 1
fi
MAJOR=$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
if [ "$MAJOR" != "17" ] && [ "$MAJOR" != "21" ]; then
  echo "campaignlake needs Java 17 (found Java ${MAJOR:-unknown} at $JAVA)." >&2
  echo "Install it: Debian/Ubuntu 'sudo apt-get install openjdk-17-jre-headless'," >&2
  echo "macOS 'brew install openjdk@17', then set JAVA_HOME to it." >&2
  exit 1
fi

#!/bin/sh
# A Kafka tool's main class on the broker's jars, logging warnings to stderr.
exec java ${KAFKA_TOOL_HEAP_OPTS:--Xmx256m -XX:TieredStopAtLevel=1} \
  -Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.properties \
  -cp '/opt/kafka/libs/*' "$@"

"""Pure renderers: spec + version → child manifests (FlinkDeployment, KafkaTopic, ConfigMap, SQL vars)."""

/*
 * tracker_acl: a Mosquitto 2 plugin that refuses shared subscriptions ($share/...) to every
 * user but the tracker's bridge.
 *
 * Mosquitto's acl_file grants every subscription and checks each message when it is
 * delivered. For a plain subscription that is enough: a phone subscribed to owntracks/+/+
 * (the OwnTracks app's default) receives only what its read rule allows, and nobody else
 * notices. A shared subscription is different: the broker hands each message to one member
 * of the group, and when the read rule refuses it to that member the message is dropped,
 * not offered to another. A phone that joined the bridge's group would make the broker
 * throw away its share of every other phone's positions. So a $share subscription is
 * refused at subscribe time (SUBACK "not authorized") unless it comes from the bridge's
 * user, named by `plugin_opt_bridge_user`.
 *
 * Every other check is left to the acl_file and password_file (MOSQ_ERR_PLUGIN_DEFER).
 * Built by scripts/services (Debian's mosquitto-dev) and docker/mosquitto/Dockerfile.
 */
#include <stdio.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

static mosquitto_plugin_id_t *plugin_id = NULL;
static char *bridge_user = NULL;

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	const char *user;

	(void)event;
	(void)userdata;
	if(ed->access != MOSQ_ACL_SUBSCRIBE || strncmp(ed->topic, "$share/", 7) != 0){
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	user = mosquitto_client_username(ed->client);
	if(user != NULL && strcmp(user, bridge_user) == 0){
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "tracker_acl: refused the shared subscription %s of user %s",
			ed->topic, user != NULL ? user : "(none)");
	return MOSQ_ERR_ACL_DENIED;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	int i;

	for(i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5){
			return 5;
		}
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data, struct mosquitto_opt *opts, int opt_count)
{
	int i;

	(void)user_data;
	for(i = 0; i < opt_count; i++){
		if(strcmp(opts[i].key, "bridge_user") == 0 && opts[i].value != NULL && opts[i].value[0] != '\0'){
			bridge_user = mosquitto_strdup(opts[i].value);
		}
	}
	if(bridge_user == NULL){
		mosquitto_log_printf(MOSQ_LOG_ERR, "tracker_acl: plugin_opt_bridge_user is not set");
		return MOSQ_ERR_INVAL;
	}
	plugin_id = identifier;
	return mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count)
{
	(void)user_data;
	(void)opts;
	(void)opt_count;
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	mosquitto_free(bridge_user);
	bridge_user = NULL;
	return MOSQ_ERR_SUCCESS;
}

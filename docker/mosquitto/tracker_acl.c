/*
 * tracker_acl: a Mosquitto 2 plugin that gives a phone only what it needs.
 *
 * Every user but the tracker's bridge (named by `plugin_opt_bridge_user`) is a phone whose
 * MQTT user is its device id U. Such a user may
 *
 * - publish under owntracks/U/ only, and never to owntracks/U/friend.*, which the workers
 *   write for it (tracker/ingest/mqtt_friends.py);
 * - subscribe only to topic filters inside owntracks/U/ (owntracks/U/+, owntracks/U/#...):
 *   a wildcard over other users' topics (owntracks/+/+, #) and any shared subscription
 *   ($share/...) are refused at subscribe time (SUBACK "not authorized");
 * - receive only its friends: owntracks/U/friend.F and owntracks/U/friend.F/info.
 *
 * Why at subscribe time: Mosquitto's acl_file grants every subscription and checks each
 * message when it is delivered. A phone subscribed to owntracks/+/+ would then cost the
 * broker an ACL check per message of every phone, refused each time; and a phone in the
 * bridge's shared subscription would be offered every second message and, not allowed to
 * read it, make the broker drop it rather than offer it to another member.
 *
 * The bridge's user is left to the acl_file (MOSQ_ERR_PLUGIN_DEFER), and so is whatever
 * this plugin allows: the acl_file's own rule (owntracks/%u/#) applies on top.
 * Built by scripts/services (Debian's mosquitto-dev) and docker/mosquitto/Dockerfile.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

static mosquitto_plugin_id_t *plugin_id = NULL;
static char *bridge_user = NULL;

static const char ROOT[] = "owntracks/";
static const char FRIEND[] = "friend.";

/* Whether topic (or filter) lies under owntracks/<user>/; *rest is what follows. */
static bool in_own_tree(const char *topic, const char *user, const char **rest)
{
	size_t length = strlen(user);

	if(strncmp(topic, ROOT, sizeof(ROOT) - 1) != 0){
		return false;
	}
	topic += sizeof(ROOT) - 1;
	if(strncmp(topic, user, length) != 0 || topic[length] != '/'){
		return false;
	}
	*rest = topic + length + 1;
	return true;
}

/* friend.<marker> or friend.<marker>/info */
static bool is_friend_topic(const char *rest)
{
	const char *slash;

	if(strncmp(rest, FRIEND, sizeof(FRIEND) - 1) != 0){
		return false;
	}
	rest += sizeof(FRIEND) - 1;
	if(rest[0] == '\0' || rest[0] == '/'){
		return false;
	}
	slash = strchr(rest, '/');
	return slash == NULL || strcmp(slash, "/info") == 0;
}

static int refuse(const char *what, const char *topic, const char *user)
{
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "tracker_acl: refused %s %s to user %s", what, topic,
			user != NULL ? user : "(none)");
	return MOSQ_ERR_ACL_DENIED;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	const char *user;
	const char *rest;

	(void)event;
	(void)userdata;
	user = mosquitto_client_username(ed->client);
	if(user != NULL && strcmp(user, bridge_user) == 0){
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	switch(ed->access){
		case MOSQ_ACL_SUBSCRIBE:
			if(user == NULL || !in_own_tree(ed->topic, user, &rest)){
				return refuse("the subscription", ed->topic, user);
			}
			return MOSQ_ERR_PLUGIN_DEFER;
		case MOSQ_ACL_WRITE:
			if(user == NULL || !in_own_tree(ed->topic, user, &rest) || rest[0] == '\0'
					|| strncmp(rest, FRIEND, sizeof(FRIEND) - 1) == 0){
				return refuse("publishing to", ed->topic, user);
			}
			return MOSQ_ERR_PLUGIN_DEFER;
		case MOSQ_ACL_READ:
			if(user == NULL || !in_own_tree(ed->topic, user, &rest) || !is_friend_topic(rest)){
				return MOSQ_ERR_ACL_DENIED;  /* every message a filter matches: not logged */
			}
			return MOSQ_ERR_PLUGIN_DEFER;
		default:
			return MOSQ_ERR_PLUGIN_DEFER;
	}
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

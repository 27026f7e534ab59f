/*
 * The QAPI schema additions of the contract, from qapi-additions.json (the
 * capabilities fixture of libvirt's tests has the same): the entries added to
 * query-qmp-schema, the values added to enums (MigrationCapability), the
 * members added to a command's arguments (migrate-set-parameters), the
 * -smp parameter added to query-command-line-options, and the capabilities
 * added to query-migrate-capabilities. The format is described in the file.
 */

#include <string.h>

#include "standin.h"


json_object *
schemaLoad(const char *path, GError **err)
{
    g_autoptr(json_object) obj = json_object_from_file(path);
    json_object *tmp;
    const char *keys[] = { "schema", "enum-values", "arg-members", "smp-opts",
                           "migrate-capabilities" };
    size_t i;

    if (!obj || !json_object_is_type(obj, json_type_object)) {
        g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                    "cannot read the schema additions %s: %s", path,
                    json_util_get_last_err() ? json_util_get_last_err() : "not an object");
        return NULL;
    }
    for (i = 0; i < G_N_ELEMENTS(keys); i++) {
        if (!json_object_object_get_ex(obj, keys[i], &tmp) ||
            !json_object_is_type(tmp, json_type_array)) {
            g_set_error(err, G_FILE_ERROR, G_FILE_ERROR_FAILED,
                        "%s: '%s' must be an array", path, keys[i]);
            return NULL;
        }
    }
    return g_steal_pointer(&obj);
}


static json_object *
schemaList(Standin *st, const char *key)
{
    json_object *list = NULL;

    json_object_object_get_ex(st->schema, key, &list);
    return list;
}


/* "$Name" and "[$Name]" in @obj become the numbers of @types */
static void
schemaNumber(json_object *obj, GHashTable *types)
{
    size_t i;

    if (json_object_is_type(obj, json_type_array)) {
        for (i = 0; i < json_object_array_length(obj); i++)
            schemaNumber(json_object_array_get_idx(obj, i), types);
    } else if (json_object_is_type(obj, json_type_object)) {
        json_object_object_foreach(obj, key, val) {
            (void) key;
            schemaNumber(val, types);
        }
    } else if (json_object_is_type(obj, json_type_string)) {
        const char *str = json_object_get_string(obj);
        const char *num;

        if (str[0] == '$' && (num = g_hash_table_lookup(types, str))) {
            json_object_set_string(obj, num);
        } else if (g_str_has_prefix(str, "[$") && g_str_has_suffix(str, "]")) {
            g_autofree char *inner = g_strndup(str + 1, strlen(str) - 2);
            g_autofree char *arr = NULL;

            if ((num = g_hash_table_lookup(types, inner))) {
                arr = g_strdup_printf("[%s]", num);
                json_object_set_string(obj, arr);
            }
        }
    }
}


static bool
enumHasValue(json_object *entry, const char *value)
{
    json_object *values;
    size_t i;

    if (!json_object_object_get_ex(entry, "values", &values) ||
        !json_object_is_type(values, json_type_array))
        return false;
    for (i = 0; i < json_object_array_length(values); i++) {
        const char *v = json_object_get_string(json_object_array_get_idx(values, i));
        if (v && g_str_equal(v, value))
            return true;
    }
    return false;
}


/* "arg-members": members added to the arguments object of a command */
static void
schemaAmendArgs(Standin *st, json_object *schema)
{
    json_object *adds = schemaList(st, "arg-members");
    size_t i, j, k;

    for (j = 0; j < json_object_array_length(adds); j++) {
        json_object *add = json_object_array_get_idx(adds, j);
        const char *of = jsonGetString(add, "of");
        const char *argType = NULL;
        json_object *members = NULL;

        if (!of || !json_object_object_get_ex(add, "members", &members))
            continue;
        for (i = 0; i < json_object_array_length(schema) && !argType; i++) {
            json_object *entry = json_object_array_get_idx(schema, i);
            const char *name = jsonGetString(entry, "name");

            if (name && g_str_equal(name, of))
                argType = jsonGetString(entry, "arg-type");
        }
        for (i = 0; argType && i < json_object_array_length(schema); i++) {
            json_object *entry = json_object_array_get_idx(schema, i);
            const char *name = jsonGetString(entry, "name");
            json_object *list = NULL;

            if (!name || !g_str_equal(name, argType) ||
                !json_object_object_get_ex(entry, "members", &list))
                continue;
            for (k = 0; k < json_object_array_length(members); k++)
                json_object_array_add(list, json_object_get(
                                          json_object_array_get_idx(members, k)));
        }
    }
}


static void
schemaAmendEnums(Standin *st, json_object *schema)
{
    json_object *adds = schemaList(st, "enum-values");
    size_t i, j, k;

    for (i = 0; i < json_object_array_length(schema); i++) {
        json_object *entry = json_object_array_get_idx(schema, i);
        const char *meta = jsonGetString(entry, "meta-type");

        if (!meta || !g_str_equal(meta, "enum"))
            continue;
        for (j = 0; j < json_object_array_length(adds); j++) {
            json_object *add = json_object_array_get_idx(adds, j);
            const char *of = jsonGetString(add, "of");
            json_object *values = NULL;
            json_object *members = NULL;

            if (!of || !enumHasValue(entry, of) ||
                !json_object_object_get_ex(add, "values", &values))
                continue;
            json_object_object_get_ex(entry, "members", &members);
            for (k = 0; k < json_object_array_length(values); k++) {
                const char *v = json_object_get_string(json_object_array_get_idx(values, k));
                json_object *member;

                if (enumHasValue(entry, v))
                    continue;
                json_object_array_add(json_object_object_get(entry, "values"),
                                      json_object_new_string(v));
                if (members && json_object_is_type(members, json_type_array)) {
                    member = json_object_new_object();
                    json_object_object_add(member, "name", json_object_new_string(v));
                    json_object_array_add(members, member);
                }
            }
        }
    }
}


bool
schemaAmend(Standin *st, json_object *schema)
{
    g_autoptr(GHashTable) types = g_hash_table_new_full(g_str_hash, g_str_equal,
                                                        g_free, g_free);
    json_object *adds = schemaList(st, "schema");
    gint64 max = 0;
    size_t i, n = json_object_array_length(schema);

    for (i = 0; i < n; i++) {
        const char *name = jsonGetString(json_object_array_get_idx(schema, i), "name");
        guint64 num;

        if (!name)
            continue;
        if (g_str_equal(name, "start-migrate-incoming"))
            return false;  /* a QEMU that has it */
        if (g_ascii_string_to_unsigned(name, 10, 0, G_MAXINT, &num, NULL) &&
            (gint64) num > max)
            max = num;
    }

    /* the file's types, numbered after the schema's largest */
    for (i = 0; i < json_object_array_length(adds); i++) {
        json_object *entry = json_object_object_get(json_object_array_get_idx(adds, i),
                                                    "entry");
        const char *name = jsonGetString(entry, "name");

        if (name && name[0] == '$')
            g_hash_table_insert(types, g_strdup(name),
                                g_strdup_printf("%" G_GINT64_FORMAT,
                                                ++max));
    }

    for (i = 0; i < json_object_array_length(adds); i++) {
        json_object *entry = NULL;

        if (json_object_deep_copy(json_object_object_get(json_object_array_get_idx(adds, i),
                                                         "entry"),
                                  &entry, NULL) < 0)
            continue;
        schemaNumber(entry, types);
        json_object_array_add(schema, entry);
    }

    schemaAmendEnums(st, schema);
    schemaAmendArgs(st, schema);
    return true;
}


bool
schemaAmendCmdline(Standin *st, json_object *options)
{
    json_object *adds = schemaList(st, "smp-opts");
    size_t i, j, k;
    bool changed = false;

    for (i = 0; i < json_object_array_length(options); i++) {
        json_object *opt = json_object_array_get_idx(options, i);
        const char *name = jsonGetString(opt, "option");
        json_object *params;

        if (!name || !g_str_equal(name, "smp-opts") ||
            !json_object_object_get_ex(opt, "parameters", &params) ||
            !json_object_is_type(params, json_type_array))
            continue;
        for (k = 0; k < json_object_array_length(adds); k++) {
            json_object *param = json_object_object_get(json_object_array_get_idx(adds, k),
                                                        "parameter");
            const char *pname = jsonGetString(param, "name");
            bool has = false;

            for (j = 0; j < json_object_array_length(params); j++) {
                const char *p = jsonGetString(json_object_array_get_idx(params, j), "name");
                if (p && pname && g_str_equal(p, pname))
                    has = true;
            }
            if (!has && pname) {
                json_object_array_add(params, json_object_get(param));
                changed = true;
            }
        }
    }
    return changed;
}


bool
schemaHasCapability(Standin *st, const char *name)
{
    json_object *adds = schemaList(st, "migrate-capabilities");
    size_t i;

    for (i = 0; i < json_object_array_length(adds); i++) {
        const char *cap = jsonGetString(json_object_array_get_idx(adds, i),
                                        "capability");
        if (cap && g_str_equal(cap, name))
            return true;
    }
    return false;
}


/* query-migrate-capabilities: the capabilities of the file, with their
 * current state */
bool
schemaAmendMigrateCaps(Standin *st, json_object *caps)
{
    json_object *adds = schemaList(st, "migrate-capabilities");
    size_t i;

    for (i = 0; i < json_object_array_length(adds); i++) {
        const char *cap = jsonGetString(json_object_array_get_idx(adds, i),
                                        "capability");
        json_object *entry;
        bool state = false;

        if (!cap)
            continue;
        if (g_str_equal(cap, CAP_GUEST_ASSISTED))
            state = st->guestAssisted;
        entry = json_object_new_object();
        json_object_object_add(entry, "capability", json_object_new_string(cap));
        json_object_object_add(entry, "state", json_object_new_boolean(state));
        json_object_array_add(caps, entry);
    }
    return json_object_array_length(adds) > 0;
}

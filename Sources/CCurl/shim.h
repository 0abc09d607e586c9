#include <curl/curl.h>
#include <string.h>

/* curl_easy_setopt is variadic: Swift calls these typed wrappers instead. */
static inline CURLcode candor_setopt_string(CURL *curl, CURLoption option, const char *value) {
    return curl_easy_setopt(curl, option, value);
}
static inline CURLcode candor_setopt_long(CURL *curl, CURLoption option, long value) {
    return curl_easy_setopt(curl, option, value);
}
static inline CURLcode candor_setopt_list(CURL *curl, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(curl, option, value);
}

/* The message an SMTP upload reads, and the read callback that hands it to libcurl. */
struct candor_upload {
    const char *data;
    size_t length;
    size_t offset;
};

static size_t candor_upload_read(char *buffer, size_t size, size_t count, void *user) {
    struct candor_upload *upload = (struct candor_upload *)user;
    size_t room = size * count;
    size_t left = upload->length - upload->offset;
    size_t n = left < room ? left : room;
    memcpy(buffer, upload->data + upload->offset, n);
    upload->offset += n;
    return n;
}

static inline CURLcode candor_setopt_upload(CURL *curl, struct candor_upload *upload) {
    CURLcode rc = curl_easy_setopt(curl, CURLOPT_READFUNCTION, candor_upload_read);
    if (rc != CURLE_OK) return rc;
    rc = curl_easy_setopt(curl, CURLOPT_READDATA, upload);
    if (rc != CURLE_OK) return rc;
    return curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
}

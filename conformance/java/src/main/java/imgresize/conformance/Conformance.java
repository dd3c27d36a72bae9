package imgresize.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The event contract from another language, written from docs/EVENTS.md: Avro's single-object encoding
 * (C3 01, the little-endian CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form, the binary body),
 * task ids as keys, outcomes read back from the results topic.
 *
 * <pre>
 *   vectors  SCHEMAS_DIR VECTORS_DIR                      check every test vector, byte for byte
 *   request  SCHEMAS_DIR BOOTSTRAP REQUESTS RESULTS BUCKET KEY   produce one request, print its outcome as JSON
 *   registry REGISTRY_URL BOOTSTRAP RESULTS TASK_ID      read a task's outcome written in Confluent's wire
 *                                                        format (00, 4-byte schema id, body), its writer
 *                                                        schema fetched from the registry by id
 * </pre>
 */
public final class Conformance {
  private static final ObjectMapper JSON = new ObjectMapper();

  public static void main(String[] args) throws Exception {
    switch (args.length > 0 ? args[0] : "") {
      case "vectors" -> vectors(new File(args[1]), new File(args[2]));
      case "request" -> request(new File(args[1]), args[2], args[3], args[4], args[5], args[6]);
      case "registry" -> registryOutcome(args[1], args[2], args[3], args[4]);
      default -> {
        System.err.println("usage: vectors SCHEMAS VECTORS | request SCHEMAS BOOTSTRAP REQUESTS RESULTS BUCKET KEY");
        System.exit(2);
      }
    }
  }

  private static Schema schema(File folder, String event) throws Exception {
    return new Schema.Parser().parse(new File(folder, event + ".avsc"));
  }

  /** Every vector: the fingerprint Avro computes, the record it decodes, and the same bytes encoded again. */
  private static void vectors(File schemas, File vectors) throws Exception {
    File[] files = vectors.listFiles((dir, name) -> name.endsWith(".json"));
    if (files == null || files.length == 0) {
      throw new IllegalStateException("no vectors in " + vectors);
    }
    for (File file : files) {
      JsonNode vector = JSON.readTree(file);
      String version = vector.get("schema_version").asText();
      File folder = version.equals("current") ? new File(schemas, "avro") : new File(schemas, "history/" + version);
      Schema schema = schema(folder, vector.get("event").asText());
      long fingerprint = SchemaNormalization.parsingFingerprint64(schema);
      check(fingerprint == vector.get("fingerprint_int64").asLong(), file, "fingerprint " + fingerprint);
      check(
          SchemaNormalization.toParsingForm(schema).equals(vector.get("parsing_canonical_form").asText()),
          file,
          "canonical form");
      byte[] encoded = HexFormat.of().parseHex(vector.get("encoded_hex").asText());
      BinaryMessageDecoder<GenericRecord> decoder = new BinaryMessageDecoder<>(GenericData.get(), schema);
      GenericRecord record = decoder.decode(encoded);
      check(
          record.get("task_id").toString().equals(vector.get("values").get("task_id").asText()), file, "task_id");
      byte[] again = new BinaryMessageEncoder<GenericRecord>(GenericData.get(), schema).encode(record).array();
      check(java.util.Arrays.equals(encoded, again), file, "re-encoded bytes");
      System.out.println("ok " + file.getName());
    }
  }

  private static void check(boolean ok, File file, String what) {
    if (!ok) {
      throw new AssertionError(file.getName() + ": " + what + " differs from the vector");
    }
  }

  /** A ResizeRequested built from the documented fields, produced with the task id as key; the outcome read back. */
  private static void request(
      File schemas, String bootstrap, String requests, String results, String bucket, String key) throws Exception {
    File current = new File(schemas, "avro");
    Schema requested = schema(current, "ResizeRequested");
    String taskId = UUID.randomUUID().toString();
    GenericRecord source = new GenericData.Record(requested.getField("source").schema());
    source.put("bucket", bucket);
    source.put("key", key);
    GenericRecord request = new GenericData.Record(requested);
    request.put("event_id", UUID.randomUUID().toString());
    request.put("task_id", taskId);
    request.put("occurred_at", ChronoUnit.MICROS.between(Instant.EPOCH, Instant.now()));
    request.put("producer", "java-conformance@localhost");
    request.put("source", source);
    request.put("width", 64);
    request.put("height", 48);
    request.put("mode", "fill");
    request.put("format", "png");
    request.put("content_type", null);
    request.put("quality", null);
    request.put("gravity", "centre");
    request.put("upscale", null);
    request.put("variants", new GenericData.Array<>(requested.getField("variants").schema(), List.of()));
    request.put("callback_url", null);
    // Since v7: the client's focal point (a nested record) and quality=auto (off: a PNG output).
    Schema focusSchema = requested.getField("focus").schema().getTypes().get(1);
    GenericRecord focus = new GenericData.Record(focusSchema);
    focus.put("x", 0.25);
    focus.put("y", 0.5);
    request.put("focus", focus);
    request.put("auto_quality", false);
    ByteBuffer value = new BinaryMessageEncoder<GenericRecord>(GenericData.get(), requested).encode(request);

    Properties producerConfig = new Properties();
    producerConfig.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    producerConfig.put(ProducerConfig.ACKS_CONFIG, "all");
    producerConfig.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    producerConfig.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
    try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(producerConfig)) {
      producer.send(new ProducerRecord<>(requests, taskId, toBytes(value))).get();
    }

    // The outcome events, each known by its schema's fingerprint (the 8 bytes after C3 01).
    Map<Long, Schema> outcomes = new HashMap<>();
    for (String event : List.of("ResizeStarted", "ResizeCompleted", "ResizeFailed")) {
      Schema schema = schema(current, event);
      outcomes.put(SchemaNormalization.parsingFingerprint64(schema), schema);
    }
    Properties consumerConfig = resultsConsumer(bootstrap, "java-conformance-" + taskId);
    List<String> seen = new ArrayList<>();
    try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(consumerConfig)) {
      consumer.subscribe(List.of(results));
      Instant deadline = Instant.now().plusSeconds(90);
      while (Instant.now().isBefore(deadline)) {
        for (ConsumerRecord<String, byte[]> record : consumer.poll(Duration.ofMillis(500))) {
          if (!taskId.equals(record.key())) {
            continue;
          }
          long fingerprint = ByteBuffer.wrap(record.value(), 2, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
          Schema schema = outcomes.get(fingerprint);
          if (schema == null) {
            throw new IllegalStateException("unknown writer schema fingerprint " + fingerprint);
          }
          GenericRecord event = new BinaryMessageDecoder<GenericRecord>(GenericData.get(), schema).decode(record.value());
          seen.add(schema.getName());
          if (schema.getName().equals("ResizeCompleted")) {
            GenericRecord result = (GenericRecord) event.get("result");
            Map<String, Object> out = new HashMap<>();
            out.put("task_id", taskId);
            out.put("partition", record.partition());
            out.put("event", schema.getName());
            out.put("bucket", result.get("bucket").toString());
            out.put("key", result.get("key").toString());
            out.put("content_type", result.get("content_type").toString());
            out.put("width", result.get("width"));
            out.put("height", result.get("height"));
            System.out.println(JSON.writeValueAsString(out));
            return;
          }
          if (schema.getName().equals("ResizeFailed") && !(Boolean) event.get("retriable")) {
            throw new IllegalStateException("task failed: " + event.get("error_code") + " " + event.get("error_message"));
          }
        }
      }
    }
    throw new IllegalStateException("no outcome for " + taskId + " in 90 s; saw " + seen);
  }

  /** A consumer of the results topic from its start, in a group of its own: keys as text, values as bytes. */
  private static Properties resultsConsumer(String bootstrap, String group) {
    Properties config = new Properties();
    config.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    config.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    config.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    config.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    config.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    return config;
  }

  /** A task's ResizeCompleted from the results topic in the registry encoding, printed as JSON. */
  private static void registryOutcome(String registry, String bootstrap, String results, String taskId)
      throws Exception {
    HttpClient http = HttpClient.newHttpClient();
    Map<Integer, Schema> writers = new HashMap<>();
    Properties consumerConfig = resultsConsumer(bootstrap, "java-registry-" + taskId);
    try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(consumerConfig)) {
      consumer.subscribe(List.of(results));
      Instant deadline = Instant.now().plusSeconds(60);
      while (Instant.now().isBefore(deadline)) {
        for (ConsumerRecord<String, byte[]> record : consumer.poll(Duration.ofMillis(500))) {
          byte[] value = record.value();
          if (!taskId.equals(record.key()) || value.length < 5 || value[0] != 0) {
            continue;
          }
          int id = ByteBuffer.wrap(value, 1, 4).order(ByteOrder.BIG_ENDIAN).getInt();
          Schema writer = writers.get(id);
          if (writer == null) {
            HttpResponse<String> answer = http.send(
                HttpRequest.newBuilder(URI.create(registry + "/schemas/ids/" + id)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
            if (answer.statusCode() != 200) {
              throw new IllegalStateException("schema id " + id + ": HTTP " + answer.statusCode());
            }
            writer = new Schema.Parser().parse(JSON.readTree(answer.body()).get("schema").asText());
            writers.put(id, writer);
          }
          Object decoded = new GenericDatumReader<Object>(writer)
              .read(null, DecoderFactory.get().binaryDecoder(value, 5, value.length - 5, null));
          GenericRecord event = (GenericRecord) decoded;
          if (event.getSchema().getName().equals("ResizeCompleted")) {
            GenericRecord result = (GenericRecord) event.get("result");
            Map<String, Object> out = new HashMap<>();
            out.put("task_id", taskId);
            out.put("schema_id", id);
            out.put("event", event.getSchema().getName());
            out.put("key", result.get("key").toString());
            out.put("content_type", result.get("content_type").toString());
            out.put("width", result.get("width"));
            out.put("height", result.get("height"));
            System.out.println(JSON.writeValueAsString(out));
            return;
          }
        }
      }
    }
    throw new IllegalStateException("no registry-encoded ResizeCompleted for " + taskId + " in 60 s");
  }

  private static byte[] toBytes(ByteBuffer buffer) {
    byte[] bytes = new byte[buffer.remaining()];
    buffer.get(bytes);
    return bytes;
  }
}
